"""``keyquorum.client`` loads a name's module on first use, not at import.

The CLI starts for every shell-script call: importing the SDK package must not pull
in httpx, every model module and the async client before anything is used; a
``Client`` loads its administrative call groups when one is first called, and a
plain-HTTP client does not read the system's CA store it will never use.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys

import pytest

import keyquorum.client as sdk
from keyquorum.client._transport import client_options


def test_importing_the_package_loads_no_client_module_and_no_httpx() -> None:
    probe = ("import sys, keyquorum.client; "
             "print(sorted(m for m in sys.modules if m == 'httpx' "
             "or m.startswith('keyquorum.client._')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None
    assert set(sdk.__all__) <= set(dir(sdk))


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        sdk.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")


ADMIN_MODULES = ("_access_keys", "_admin_calls", "_admin_models", "_approvals", "_custodians")


def test_a_client_loads_the_administrative_call_groups_only_when_one_is_called() -> None:
    probe = (
        "import json, sys, httpx\n"
        "from keyquorum.client import Client\n"
        "def answer(request):\n"
        "    return httpx.Response(200, json={'accessor': 'acc_1', 'policies': ['root']})\n"
        "def loaded():\n"
        "    return sorted(m.rsplit('.', 1)[1] for m in sys.modules\n"
        "                  if m.startswith('keyquorum.client._'))\n"
        "kq = Client('http://127.0.0.1:1', 't', transport=httpx.MockTransport(answer))\n"
        "before = loaded()\n"
        "info = kq.token_self()\n"
        "print(json.dumps([before, loaded(), info.accessor]))\n")
    before, after, accessor = json.loads(subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert not set(ADMIN_MODULES) & set(before)  # encrypt and its kin need none of them
    assert {"_admin_calls", "_admin_models"} <= set(after) and accessor == "acc_1"


def _trusted_cas(context: ssl.SSLContext) -> int:
    return context.cert_store_stats()["x509_ca"]


def test_a_plain_http_client_skips_loading_the_ca_store_but_never_trusts_blindly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    plain = client_options("http://127.0.0.1:8200", 5, True)["verify"]
    assert isinstance(plain, ssl.SSLContext) and _trusted_cas(plain) == 0
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname  # TLS would fail
    assert client_options("https://kq.example:8200", 5, True)["verify"] is True
    assert client_options("http://127.0.0.1:8200", 5, False)["verify"] is False
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.example:3128")  # TLS to the proxy
    assert client_options("http://127.0.0.1:8200", 5, True)["verify"] is True
