"""The SDK's public face and its request/answer code, without a server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

import keyquorum.client as sdk
from keyquorum.client import _crypto_calls as crypto
from keyquorum.client import _protocol as api
from keyquorum.client import errors


def test_all_is_sorted_unique_and_importable() -> None:
    assert sdk.__all__ == sorted(sdk.__all__)
    assert len(set(sdk.__all__)) == len(sdk.__all__)
    for name in sdk.__all__:
        assert hasattr(sdk, name), name


def test_every_error_class_is_exported() -> None:
    for name in errors.__all__:
        assert name in sdk.__all__


def test_every_exception_class_is_in_errors_all() -> None:
    defined = {name for name, value in vars(errors).items()
               if isinstance(value, type) and issubclass(value, errors.KeyquorumClientError)}
    assert defined == set(errors.__all__)


def test_importing_the_sdk_loads_no_server_module() -> None:
    # The custodian-drill proof imports the server's share and proof code when it runs.
    probe = ("import sys, keyquorum.client; print(sorted(m for m in sys.modules "
             "if m.startswith('keyquorum') and not m.startswith('keyquorum.client')))")
    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                            text=True).stdout.strip()
    assert loaded == "['keyquorum']"


def test_async_client_has_the_same_public_methods_as_client() -> None:
    def public(cls: type) -> set[str]:  # the operations are in the base classes
        return {n for base in cls.__mro__[:-1] for n in vars(base) if not n.startswith("_")}

    assert public(sdk.Client) - {"close"} == public(sdk.AsyncClient) - {"aclose"}


@pytest.mark.parametrize(("code", "status", "cls"), [
    ("invalid_request", 400, sdk.InvalidRequestError),
    ("invalid_ciphertext", 400, sdk.InvalidCiphertextError),
    ("unauthenticated", 401, sdk.UnauthenticatedError),
    ("forbidden", 403, sdk.ForbiddenError),
    ("approval_required", 403, sdk.ApprovalRequiredError),
    ("not_found", 404, sdk.NotFoundError),
    ("conflict", 409, sdk.ConflictError),
    ("key_state", 409, sdk.KeyStateError),
    ("too_large", 413, sdk.TooLargeError),
    ("rate_limited", 429, sdk.RateLimitedError),
    ("sealed", 503, sdk.SealedError),
    ("audit_unavailable", 503, sdk.AuditUnavailableError),
    ("storage_unavailable", 503, sdk.StorageUnavailableError),
])
def test_each_error_code_raises_its_own_class(code: str, status: int, cls: type) -> None:
    body = json.dumps({"error": {"code": code, "message": "the rule", "request_id": "r-1"}})
    with pytest.raises(cls) as caught:
        api.finish(api.get_key("k"), status, "r-header", body.encode())
    exc = caught.value
    assert isinstance(exc, sdk.KeyquorumAPIError)
    assert (exc.code, exc.message, exc.status, exc.request_id) == (code, "the rule", status, "r-1")
    assert cls.http_status == status


def test_approval_required_carries_the_approval_id() -> None:
    body = {"error": {"code": "approval_required", "message": "m", "approval_id": "ap-7"}}
    with pytest.raises(sdk.ApprovalRequiredError) as caught:
        api.finish(api.rotate_key("k"), 403, "r-2", json.dumps(body).encode())
    assert caught.value.approval_id == "ap-7"
    assert caught.value.request_id == "r-2"  # from the X-Request-Id header


def test_unknown_code_and_non_json_answers_raise_the_base_error() -> None:
    body = json.dumps({"error": {"code": "brand_new", "message": "later"}}).encode()
    with pytest.raises(sdk.KeyquorumAPIError) as caught:
        api.finish(api.get_key("k"), 418, None, body)
    assert type(caught.value) is sdk.KeyquorumAPIError and caught.value.code == "brand_new"
    with pytest.raises(sdk.KeyquorumAPIError) as caught:
        api.finish(api.get_key("k"), 502, None, b"<html>bad gateway</html>")
    assert caught.value.status == 502


def test_health_reads_a_sealed_503_answer_as_health() -> None:
    body = json.dumps({"initialized": True, "sealed": True, "version": "0.1.0"}).encode()
    health = api.finish(api.health(), 503, None, body)
    assert health.sealed and health.initialized


def test_batch_answer_mixes_results_and_errors_in_order() -> None:
    body = {"results": [{"ciphertext": "kq1:AA", "key_version": 1},
                        {"error": {"code": "too_large", "message": "over 64 KiB"}}]}
    out = api.finish(crypto.encrypt_batch("k", [b"a", b"b"]), 200, "r-3", json.dumps(body).encode())
    assert out[0] == sdk.EncryptResult("kq1:AA", 1)
    assert isinstance(out[1], sdk.TooLargeError) and out[1].request_id == "r-3"


def test_binary_values_are_sent_as_standard_base64() -> None:
    call = crypto.encrypt("payments/cards", b"\xff\xfe", {"tenant": "acme"})
    assert call.path == "/v1/keys/payments/cards/encrypt"
    assert call.json == {"plaintext": "//4=", "context": {"tenant": "acme"}}
    assert crypto.sign("k", digest=b"\x01", hash="sha256").json == {"digest": "AQ==",
                                                                    "hash": "sha256"}
    assert crypto.decrypt("kq1:x", key="a/b").path == "/v1/keys/a/b/decrypt"
    assert crypto.decrypt("kq1:x").path == "/v1/decrypt"


@pytest.mark.parametrize("name", ["", "a/../b", "./a", "a//b", ".."])
def test_dot_and_empty_segments_are_refused_before_sending(name: str) -> None:
    with pytest.raises(ValueError, match="segment"):
        api.get_key(name)


def test_sign_needs_exactly_one_of_message_or_digest() -> None:
    with pytest.raises(ValueError):
        crypto.sign("k")
    with pytest.raises(ValueError):
        crypto.sign("k", b"m", digest=b"d", hash="sha256")


def test_the_token_never_shows_in_reprs() -> None:
    secret = "kq-token-SECRET"
    with sdk.Client("http://127.0.0.1:1", token=secret) as kq:
        assert secret not in repr(kq)
    assert secret not in repr(sdk.AsyncClient("http://127.0.0.1:1", token=secret))
    assert secret not in repr(sdk.Token(token=secret, accessor="acc"))
    assert "hunter2" not in repr(sdk.DecryptResult(plaintext=b"hunter2", key="k"))
    assert "SHARE" not in repr(sdk.InitResult(shares=("SHARE",), root_token=secret))


def test_environment_gives_the_address_and_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYQUORUM_ADDR", "http://10.0.0.1:9999/")
    monkeypatch.setenv("KEYQUORUM_TOKEN", "t")
    assert api.resolve_addr(None) == "http://10.0.0.1:9999"
    assert api.resolve_token(None) == "t"
    monkeypatch.delenv("KEYQUORUM_ADDR")
    assert api.resolve_addr(None) == "http://127.0.0.1:8200"


def test_unreachable_server_raises_transport_error_without_the_token() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = "kq-token-SECRET"
    with (sdk.Client(f"http://127.0.0.1:{port}", token=secret, timeout=2) as kq,
          pytest.raises(sdk.TransportError) as caught):
        kq.get_key("k")
    assert secret not in str(caught.value) and secret not in repr(caught.value)
