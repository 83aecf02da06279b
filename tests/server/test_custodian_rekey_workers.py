"""Drills and rekey across two workers: one ceremony and one-use challenges in the store,
and the root key a rekey rotates reaches the sibling worker at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodian_keys_support import Custodians
from keyquorum.backup.restore import open_backup
from keyquorum.client._custodians import CustodianChallenge, make_proof
from keyquorum.errors import InvalidRequest
from keyquorum.seal.seal_set import Unlock
from kq_support import ServerProcess
from server.test_server_workers import fresh, workers_seen


@pytest.mark.server
def test_rekey_and_drills_hold_across_workers(two_workers: ServerProcess,
                                              tmp_path: Path) -> None:
    server = two_workers
    assert len(workers_seen(server)) == 2
    init = fresh(server, "POST", "/v1/sys/init",
                 json={"shares": 3, "threshold": 2, "custodians": ["ann", "bo", "cy"]}).json()
    shares, root = init["shares"], init["root_token"]
    for share in shares[:2]:  # through the supervisor: counts as verified at unseal
        fresh(server, "POST", "/v1/sys/unseal", json={"share": share})
    rows = fresh(server, "GET", "/v1/sys/custodians", root).json()["custodians"]
    assert [r["verified_by"] for r in rows] == ["unseal", "unseal", None]
    assert [r["acknowledged"] for r in rows] == [True, True, False]

    # A challenge is consumed once whichever worker sees the proof.
    challenge = fresh(server, "POST", "/v1/sys/custodians/cy/challenge").json()
    proof = make_proof(CustodianChallenge.from_json(challenge), shares[2])
    answers = [fresh(server, "POST", "/v1/sys/custodians/cy/proof", json=proof)
               for _ in range(6)]
    assert [a.status_code for a in answers].count(200) == 1
    assert {a.json()["error"]["code"] for a in answers if a.status_code != 200} == {
        "challenge_used"}

    people = Custodians(["ann", "bo", "cy"])
    nonce = fresh(server, "POST", "/v1/sys/rekey/init", root,
                  json={"reissue": True, "custodian_keys": people.keys_body()}).json()["nonce"]
    for share in (shares[0], shares[1]):
        answer = fresh(server, "POST", "/v1/sys/rekey/update",
                       json={"nonce": nonce, "share": share})
        assert answer.status_code == 200, answer.text
    assert "kqs1-" not in answer.text  # sealed to each custodian, never in the clear
    new = people.open_all(answer.json())

    # Both workers adopted the rotated root key: every backup, whichever worker makes
    # it, opens with the new shares and not with the retired ones.
    for i in range(6):
        made = fresh(server, "GET", "/v1/sys/backup", root)
        assert made.status_code == 200, made.text
        path = tmp_path / f"b{i}.kqbk"
        path.write_bytes(made.content)
        _header, _root_key, body = open_backup(path, Unlock(shares=tuple(new[:2])))
        body.close()
        with pytest.raises(InvalidRequest):
            open_backup(path, Unlock(shares=tuple(shares[:2])))

    fresh(server, "POST", "/v1/sys/seal", root)
    refused = fresh(server, "POST", "/v1/sys/unseal", json={"share": shares[0]})
    assert refused.status_code == 400  # every worker and the supervisor see the new seal
    for share in new[1:]:
        status = fresh(server, "POST", "/v1/sys/unseal", json={"share": share}).json()
    assert status["sealed"] is False
