"""Init, unseal and seal over HTTP, through the real app (in process).

(That a restarted server comes back sealed with its keys: tests/e2e/test_e2e_seal.py.)"""

from __future__ import annotations

import itertools

import httpx
import pytest

from conftest import MakeInProcess
from http_helpers import assert_error, create_key, encrypt, ok, unb64, unique
from inprocess_server import InProcessServer

pytestmark = pytest.mark.postgresql


def _post(server: InProcessServer, path: str, body: object) -> httpx.Response:
    with server.anonymous() as http:
        return http.post(path, json=body)


def _status(server: InProcessServer) -> dict:
    with server.anonymous() as http:
        return ok(http.get("/v1/sys/seal-status"))  # type: ignore[no-any-return]


def _seal(server: InProcessServer) -> None:
    with server.client() as http:
        answer = ok(http.post("/v1/sys/seal"))
    assert answer["sealed"] is True


BAD_INIT_BODIES = [
    {"shares": 3, "threshold": 4},   # k > n
    {"shares": 33, "threshold": 2},  # n > 32
    {"shares": 0, "threshold": 0},
    {"shares": 3, "threshold": 0},
    {"shares": 0, "threshold": 1},
    {"shares": -1, "threshold": 1},
    {"shares": "3", "threshold": 2},
    {"shares": 3, "threshold": 2.5},
    {"shares": 3},
    {"shares": 3, "threshold": 2, "surprise": 1},
]


def test_bad_init_parameters_are_refused(fresh_inprocess: InProcessServer) -> None:
    for body in BAD_INIT_BODIES:
        assert_error(_post(fresh_inprocess, "/v1/sys/init", body), 400, "invalid_request")
        assert _status(fresh_inprocess)["initialized"] is False, body
    # refusals leave the server initializable
    assert fresh_inprocess.init(shares=32, threshold=1)["threshold"] == 1


@pytest.mark.parametrize(("n", "k"), [(1, 1), (4, 3), (32, 32)])
def test_init_with_various_n_k_then_second_init_conflicts(
        make_inprocess: MakeInProcess, n: int, k: int) -> None:
    server = make_inprocess()
    answer = server.init(shares=n, threshold=k, force=k == n)
    assert len(answer["shares"]) == n
    assert len(set(answer["shares"])) == n
    assert answer["root_token"]
    status = _status(server)
    assert (status["initialized"], status["sealed"]) == (True, True)
    assert (status["shares"], status["threshold"], status["progress"]) == (n, k, 0)
    assert_error(_post(server, "/v1/sys/init", {"shares": n, "threshold": k,
                                                 "force": True}), 409, "conflict")
    assert_error(_post(server, "/v1/sys/init", {"shares": 3, "threshold": 2}),
                 409, "conflict")
    # any k of them unseal
    last = server.unseal(answer["shares"][-k:])
    assert last["sealed"] is False
    assert server.anonymous().get("/v1/sys/health").status_code == 200


def test_every_k_subset_unseals_with_progress(fresh_inprocess: InProcessServer) -> None:
    fresh_inprocess.init(shares=5, threshold=3)
    shares = fresh_inprocess.shares
    subsets = list(itertools.combinations(range(5), 3))
    assert len(subsets) == 10
    for subset in subsets:
        assert _status(fresh_inprocess)["sealed"] is True
        for position, index in enumerate(subset, start=1):
            status = ok(_post(fresh_inprocess, "/v1/sys/unseal", {"share": shares[index]}))
            if position < 3:
                assert (status["sealed"], status["progress"]) == (True, position), subset
            else:
                assert (status["sealed"], status["progress"]) == (False, 0), subset
        assert fresh_inprocess.anonymous().get("/v1/sys/health").status_code == 200
        _seal(fresh_inprocess)
        assert fresh_inprocess.anonymous().get("/v1/sys/health").status_code == 503


def test_reset_discards_progress(fresh_inprocess: InProcessServer) -> None:
    fresh_inprocess.init(shares=3, threshold=2)
    status = ok(_post(fresh_inprocess, "/v1/sys/unseal", {"share": fresh_inprocess.shares[0]}))
    assert status["progress"] == 1 and len(status["nonce"]) == 32
    status = ok(_post(fresh_inprocess, "/v1/sys/unseal", {"reset": True,
                                                          "nonce": status["nonce"]}))
    assert (status["progress"], status["sealed"]) == (0, True)
    # after reset the earlier share counts again
    assert ok(_post(fresh_inprocess, "/v1/sys/unseal", {"share": fresh_inprocess.shares[0]}))[
        "progress"] == 1
    assert ok(_post(fresh_inprocess, "/v1/sys/unseal", {"share": fresh_inprocess.shares[2]}))[
        "sealed"] is False


def test_wrong_and_duplicate_shares_are_refused_alone_and_progress_kept(
        make_inprocess: MakeInProcess, fresh_inprocess: InProcessServer) -> None:
    # shares of another init: valid format and checksum, wrong seal
    other = make_inprocess()
    foreign = other.init(shares=3, threshold=2)["shares"]
    other.stop()
    fresh_inprocess.init(shares=3, threshold=2)
    shares = fresh_inprocess.shares
    assert ok(_post(fresh_inprocess, "/v1/sys/unseal", {"share": shares[0]}))["progress"] == 1

    error = assert_error(_post(fresh_inprocess, "/v1/sys/unseal", {"share": foreign[1]}),
                         400, "invalid_request")
    assert foreign[1] not in error["message"]
    assert _status(fresh_inprocess)["progress"] == 1

    # one character changed in the value: the checksum catches it
    prefix, index, body, checksum = shares[1].split("-")
    flipped = body[:5] + ("a" if body[5] != "a" else "b") + body[6:]
    error = assert_error(
        _post(fresh_inprocess, "/v1/sys/unseal",
              {"share": "-".join([prefix, index, flipped, checksum])}),
        400, "invalid_request")
    assert "checksum" in error["message"]
    assert _status(fresh_inprocess)["progress"] == 1

    # garbage
    assert_error(_post(fresh_inprocess, "/v1/sys/unseal", {"share": "not-a-share"}),
                 400, "invalid_request")
    assert_error(_post(fresh_inprocess, "/v1/sys/unseal", {"share": 12}), 400, "invalid_request")
    # the same share twice
    assert_error(_post(fresh_inprocess, "/v1/sys/unseal", {"share": shares[0]}),
                 400, "invalid_request")
    status = _status(fresh_inprocess)
    assert (status["progress"], status["sealed"]) == (1, True)

    status = ok(_post(fresh_inprocess, "/v1/sys/unseal", {"share": shares[1]}))
    assert status["sealed"] is False


def test_sealed_and_uninitialized_servers_answer_sealed(fresh_inprocess: InProcessServer) -> None:
    health = fresh_inprocess.anonymous().get("/v1/sys/health")
    assert health.status_code == 503
    assert health.json()["initialized"] is False
    assert_error(_post(fresh_inprocess, "/v1/sys/unseal", {"share": "kqs1-01-aa-bb"}),
                 503, "sealed")
    with fresh_inprocess.client("anything") as http:
        assert_error(http.post("/v1/keys", json={"name": "a", "spec": "aes-256-gcm"}),
                     503, "sealed")


def test_seal_via_api_needs_sys_seal_and_stops_operations(
        inprocess_server: InProcessServer) -> None:
    name = unique("seal-api")
    with inprocess_server.client() as http:
        create_key(http, name, "aes-256-gcm")
        text = encrypt(http, name, b"x")["ciphertext"]
        ok(http.put("/v1/policies/no-seal", json={"rules": [
            {"keys": "**", "operations": ["encrypt", "decrypt"]}]}))
        weak = ok(http.post("/v1/auth/tokens", json={"policies": ["no-seal"]}))["token"]
    with inprocess_server.client(weak) as http:
        assert_error(http.post("/v1/sys/seal"), 403, "forbidden")
    assert inprocess_server.anonymous().get("/v1/sys/health").status_code == 200
    with inprocess_server.anonymous() as anonymous:
        assert_error(anonymous.post("/v1/sys/seal"), 401, "unauthenticated")

    _seal(inprocess_server)
    assert inprocess_server.anonymous().get("/v1/sys/health").status_code == 503
    assert _status(inprocess_server)["sealed"] is True
    with inprocess_server.client() as http:
        assert_error(http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": ""}),
                     503, "sealed")
        assert_error(http.post("/v1/decrypt", json={"ciphertext": text}), 503, "sealed")
        assert_error(http.post("/v1/random", json={"bytes": 8}), 503, "sealed")
    inprocess_server.unseal()
    with inprocess_server.client() as http:
        assert unb64(ok(http.post("/v1/decrypt", json={"ciphertext": text}))["plaintext"]) == b"x"
