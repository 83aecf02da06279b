"""``keyquorum.client`` loads a name's module on first use, not at import.

The CLI starts for every shell-script call: importing the SDK package must not pull
in httpx, every model module and the async client before anything is used.
"""

from __future__ import annotations

import subprocess
import sys

import keyquorum.client as sdk


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
