"""Several transit mounts, each a prefix of keyquorum key names (``vault_transit_mounts``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import MakeInProcess
from inprocess_server import InProcessServer
from keyquorum.transit.mounts import parse_mounts
from transit_support import Vault, b64, errors

MOUNTS = {"transit": "", "team-a": "team-a/"}


@pytest.fixture
def server(make_inprocess: MakeInProcess) -> Iterator[InProcessServer]:
    made = make_inprocess(config={"vault_transit_mounts": MOUNTS})
    made.init()
    made.unseal()
    yield made


def test_a_mount_serves_the_keys_under_its_prefix(server: InProcessServer) -> None:
    with server.anonymous() as http:
        team = Vault(http, server.root_token, mount="team-a")
        team.data(team.write("keys/payments"))
        text = team.data(team.write("encrypt/payments", {"plaintext": b64(b"x")}))
        assert team.data(team.request("LIST", "keys")) == {"keys": ["payments"]}
        everything = Vault(http, server.root_token)
        # The default mount sees every key by its full name; nested names are not
        # Vault names (one segment), so team-a/payments is listed under team-a only.
        assert errors(everything.request("LIST", "keys"), 404) == []
        assert errors(everything.write("decrypt/payments", {"ciphertext":
                                                            text["ciphertext"]}), 400)
        mounts = http.get("/v1/sys/mounts", headers={"X-Vault-Token": server.root_token})
        assert set(mounts.json()["data"]) == {"transit/", "team-a/"}
    with server.client() as http:
        assert http.get("/v1/keys/team-a/payments").status_code == 200


def test_mount_settings_are_checked() -> None:
    assert parse_mounts({"transit": "", "b": "b/x/"}) == (("transit", ""), ("b", "b/x/"))
    for bad in ({"sys": ""}, {"keys": ""}, {"Up": ""}, {"t": "no-slash"}, {"t": "../"}, []):
        if bad == []:
            assert parse_mounts(bad) == ()
            continue
        with pytest.raises(ValueError):
            parse_mounts(bad)
