"""Review F2: native code and network targets come only from the server's config file.

An operator token (``sys:seal``) asks the server to load a real shared library whose
constructor leaves a marker, to call a KMS endpoint that is a socket counting callers,
and to read PINs from anywhere; a store carrying such seal entries (as a restored one
would) is auto-unsealed. Nothing is loaded, nothing is contacted, and each refusal
names the rule (``reason: not_configured``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import MakeInProcess
from http_helpers import assert_error, ok
from inprocess_server import InProcessServer
from keyquorum.config import Settings, load_config_file
from keyquorum.seal.entry import SealEntry
from keyquorum.seal.seal_set import SEAL_SET_PREFIX
from keyquorum.seal.trust import SealTrust
from keyquorum.service.seals import auto_unseal
from keyquorum.storage.system_repo import insert_entry
from sealset_support import SOFTHSM_MODULE, Evil, SoftHsm, add_seal, evil, softhsm

__all__ = ["evil", "softhsm"]

PIN_ENV = "KEYQUORUM_HSM_PIN_TRUST"


def _pkcs11(module: str, label: str = "kq", **pin: str) -> dict[str, Any]:
    return {"type": "pkcs11", "id": "hsm", "module": module, "token_label": label,
            "key_label": "root", **(pin or {"pin_env": PIN_ENV})}


@pytest.fixture
def server(make_inprocess: MakeInProcess, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> InProcessServer:
    monkeypatch.setenv(PIN_ENV, "1234")
    pins = tmp_path / "pins"
    pins.mkdir(mode=0o700)
    made = make_inprocess(config={"pkcs11_modules": [SOFTHSM_MODULE],
                                  "pkcs11_pin_dir": str(pins)})
    made.init()
    made.unseal()
    return made


def _operator(server: InProcessServer) -> str:
    with server.client() as root:
        return str(ok(root.post("/v1/auth/tokens", json={"policies": ["operator"]}))["token"])


def test_operator_cannot_make_the_server_load_a_module_or_call_an_endpoint_it_does_not_list(
        server: InProcessServer, evil: Evil, tmp_path: Path) -> None:
    with server.client(_operator(server)) as http:
        for body in (_pkcs11(str(evil.module)),
                     {"type": "awskms", "id": "kms", "key_id": "k", "region": "us-east-1",
                      "endpoint_url": evil.endpoint},
                     _pkcs11(SOFTHSM_MODULE, pin_env="HOME"),
                     _pkcs11(SOFTHSM_MODULE, pin_file="/etc/shadow"),
                     _pkcs11(SOFTHSM_MODULE, pin_file=str(tmp_path / "pins" / ".." / "x"))):
            refused = assert_error(http.post("/v1/sys/seals", json=body), 400,
                                   "invalid_request")
            assert refused["reason"] == "not_configured", (body, refused)
        assert [s["id"] for s in ok(http.get("/v1/sys/seals"))["seals"]] == ["shamir"]
    assert evil.untouched()


def test_a_listed_module_that_others_may_write_is_refused_before_it_loads(
        make_inprocess: MakeInProcess, evil: Evil) -> None:
    os.chmod(evil.module, 0o777)
    made = make_inprocess(config={"pkcs11_modules": [str(evil.module)]})
    made.init()
    made.unseal()
    with made.client() as root:
        refused = assert_error(root.post("/v1/sys/seals", json=_pkcs11(str(evil.module))),
                               400, "invalid_request")
    assert "writable by nobody else" in refused["message"] and evil.untouched()


def test_server_never_opens_a_stored_seal_its_config_does_not_list(
        server: InProcessServer, evil: Evil) -> None:
    """A restored (or edited) store names the attacker's module and endpoint: data only."""
    core = server.core
    entries = [SealEntry("pkcs11", "a-hsm", {"module": str(evil.module), "token_label": "t",
                                             "key_label": "k", "pin_env": PIN_ENV,
                                             "mechanism": "CKM_AES_GCM"}, os.urandom(60)),
               SealEntry("awskms", "b-kms", {"key_id": "k", "region": "us-east-1",
                                             "endpoint_url": evil.endpoint}, os.urandom(60))]
    with core.engine.begin() as conn:
        for entry in entries:
            insert_entry(conn, SEAL_SET_PREFIX + entry.id, entry.to_json(), 1.0)
    core.seal()
    assert auto_unseal(core) is False and core.sealed
    attempts = core.seal_set.attempts()
    assert {a["reason"] for a in attempts.values()} == {"not_configured"}, attempts
    assert evil.untouched()


def test_pin_file_inside_the_configured_directory_opens_the_hsm(
        server: InProcessServer, softhsm: SoftHsm, tmp_path: Path) -> None:
    label = softhsm.token(pin="4321")
    pin = tmp_path / "pins" / "hsm.pin"
    pin.write_text("4321\n")
    with server.client() as root:
        added = add_seal(root, _pkcs11(SOFTHSM_MODULE, label, pin_file=str(pin)),
                         server.shares[:2])
    assert added["params"]["pin_file"] == str(pin)


@pytest.mark.parametrize(("raw", "ok_or_message"), [
    ({"kms_endpoints": ["http://kms.internal:8080"]}, "must be https"),
    ({"kms_endpoints": ["http://kms.internal:8080"],
      "kms_plain_http_hosts": ["kms.internal"]}, None),
    ({"kms_endpoints": ["https://kms.eu-west-1.amazonaws.com"]}, None),
    ({"pkcs11_modules": ["libsofthsm2.so"]}, "absolute"),
    ({"pkcs11_pin_env_prefix": "home"}, "upper-case"),
    ({"pkcs11_pin_dir": "pins"}, "absolute"),
])
def test_kms_endpoints_are_https_unless_the_config_names_the_host(
        raw: dict[str, Any], ok_or_message: str | None, tmp_path: Path) -> None:
    path = tmp_path / "kq.json"
    path.write_text(json.dumps(raw))
    if ok_or_message is None:
        settings = load_config_file(Settings(data_dir=tmp_path), path)
        endpoint = raw["kms_endpoints"][0]
        settings.seal_trust.check_endpoint(endpoint)
        assert isinstance(settings.seal_trust, SealTrust)
    else:
        with pytest.raises(ValueError, match=ok_or_message):
            load_config_file(Settings(data_dir=tmp_path), path)
