"""Init, unseal, restart and seal over real HTTP against a real server process."""

from __future__ import annotations

import itertools

import httpx
import pytest

from e2e.e2e_helpers import assert_error, create_key, encrypt, ok, unb64, unique
from kq_support import ServerProcess, free_port


def _post(server: ServerProcess, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{server.addr}{path}", json=body, timeout=30)


def _status(server: ServerProcess) -> dict:
    return ok(httpx.get(f"{server.addr}/v1/sys/seal-status", timeout=30))


def _seal(server: ServerProcess) -> None:
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


@pytest.mark.server
def test_bad_init_parameters_are_refused(fresh_server: ServerProcess) -> None:
    for body in BAD_INIT_BODIES:
        assert_error(_post(fresh_server, "/v1/sys/init", body), 400, "invalid_request")
        assert _status(fresh_server)["initialized"] is False, body
    # refusals leave the server initializable
    assert fresh_server.init(shares=32, threshold=1)["threshold"] == 1


@pytest.mark.server
@pytest.mark.parametrize(("n", "k"), [(1, 1), (4, 3), (32, 32)])
def test_init_with_various_n_k_then_second_init_conflicts(
        tmp_path, n: int, k: int) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port())
    server.start()
    try:
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
        assert httpx.get(f"{server.addr}/v1/sys/health").status_code == 200
    finally:
        server.stop()


@pytest.mark.server
def test_every_k_subset_unseals_with_progress(fresh_server: ServerProcess) -> None:
    fresh_server.init(shares=5, threshold=3)
    shares = fresh_server.shares
    subsets = list(itertools.combinations(range(5), 3))
    assert len(subsets) == 10
    for subset in subsets:
        assert _status(fresh_server)["sealed"] is True
        for position, index in enumerate(subset, start=1):
            status = ok(_post(fresh_server, "/v1/sys/unseal", {"share": shares[index]}))
            if position < 3:
                assert (status["sealed"], status["progress"]) == (True, position), subset
            else:
                assert (status["sealed"], status["progress"]) == (False, 0), subset
        assert httpx.get(f"{fresh_server.addr}/v1/sys/health").status_code == 200
        _seal(fresh_server)
        assert httpx.get(f"{fresh_server.addr}/v1/sys/health").status_code == 503


@pytest.mark.server
def test_reset_discards_progress(fresh_server: ServerProcess) -> None:
    fresh_server.init(shares=3, threshold=2)
    status = ok(_post(fresh_server, "/v1/sys/unseal", {"share": fresh_server.shares[0]}))
    assert status["progress"] == 1
    status = ok(_post(fresh_server, "/v1/sys/unseal", {"reset": True}))
    assert (status["progress"], status["sealed"]) == (0, True)
    # after reset the earlier share counts again
    assert ok(_post(fresh_server, "/v1/sys/unseal", {"share": fresh_server.shares[0]}))[
        "progress"] == 1
    assert ok(_post(fresh_server, "/v1/sys/unseal", {"share": fresh_server.shares[2]}))[
        "sealed"] is False


@pytest.mark.server
def test_wrong_and_duplicate_shares_are_refused_alone_and_progress_kept(
        tmp_path, fresh_server: ServerProcess) -> None:
    # shares of another init: valid format and checksum, wrong seal
    other = ServerProcess(data_dir=tmp_path / "other", port=free_port())
    other.start()
    try:
        foreign = other.init(shares=3, threshold=2)["shares"]
    finally:
        other.stop()
    fresh_server.init(shares=3, threshold=2)
    shares = fresh_server.shares
    assert ok(_post(fresh_server, "/v1/sys/unseal", {"share": shares[0]}))["progress"] == 1

    error = assert_error(_post(fresh_server, "/v1/sys/unseal", {"share": foreign[1]}),
                         400, "invalid_request")
    assert foreign[1] not in error["message"]
    assert _status(fresh_server)["progress"] == 1

    # one character changed in the value: the checksum catches it
    prefix, index, body, checksum = shares[1].split("-")
    flipped = body[:5] + ("a" if body[5] != "a" else "b") + body[6:]
    error = assert_error(
        _post(fresh_server, "/v1/sys/unseal",
              {"share": "-".join([prefix, index, flipped, checksum])}),
        400, "invalid_request")
    assert "checksum" in error["message"]
    assert _status(fresh_server)["progress"] == 1

    # garbage
    assert_error(_post(fresh_server, "/v1/sys/unseal", {"share": "not-a-share"}),
                 400, "invalid_request")
    assert_error(_post(fresh_server, "/v1/sys/unseal", {"share": 12}), 400, "invalid_request")
    # the same share twice
    assert_error(_post(fresh_server, "/v1/sys/unseal", {"share": shares[0]}),
                 400, "invalid_request")
    status = _status(fresh_server)
    assert (status["progress"], status["sealed"]) == (1, True)

    status = ok(_post(fresh_server, "/v1/sys/unseal", {"share": shares[1]}))
    assert status["sealed"] is False


@pytest.mark.server
def test_sealed_and_uninitialized_servers_answer_sealed(fresh_server: ServerProcess) -> None:
    health = httpx.get(f"{fresh_server.addr}/v1/sys/health")
    assert health.status_code == 503
    assert health.json()["initialized"] is False
    assert_error(_post(fresh_server, "/v1/sys/unseal", {"share": "kqs1-01-aa-bb"}),
                 503, "sealed")
    with fresh_server.client("anything") as http:
        assert_error(http.post("/v1/keys", json={"name": "a", "spec": "aes-256-gcm"}),
                     503, "sealed")


@pytest.mark.server
def test_restart_comes_back_sealed_and_keys_survive(kq_server: ServerProcess) -> None:
    name = unique("survive")
    plaintexts = [b"first", b"second", b""]
    with kq_server.client() as http:
        create_key(http, name, "aes-256-gcm")
        sealed_texts = [encrypt(http, name, p, {"t": "1"})["ciphertext"] for p in plaintexts]
        signer = unique("survive-sig")
        create_key(http, signer, "ed25519")
        pem = ok(http.get(f"/v1/keys/{signer}/public-key"))["public_key_pem"]

    kq_server.restart()
    health = httpx.get(f"{kq_server.addr}/v1/sys/health")
    assert health.status_code == 503
    assert (health.json()["initialized"], health.json()["sealed"]) == (True, True)
    with kq_server.client() as http:
        assert_error(http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": ""}),
                     503, "sealed")
        assert_error(http.post("/v1/decrypt", json={"ciphertext": sealed_texts[0]}),
                     503, "sealed")
        assert_error(http.get(f"/v1/keys/{name}"), 503, "sealed")

    kq_server.unseal([kq_server.shares[2], kq_server.shares[0]])
    assert httpx.get(f"{kq_server.addr}/v1/sys/health").status_code == 200
    with kq_server.client() as http:
        for text, plain in zip(sealed_texts, plaintexts, strict=True):
            answer = ok(http.post("/v1/decrypt", json={"ciphertext": text,
                                                      "context": {"t": "1"}}))
            assert unb64(answer["plaintext"]) == plain
            assert answer["key"] == name
        assert ok(http.get(f"/v1/keys/{signer}/public-key"))["public_key_pem"] == pem


@pytest.mark.server
def test_seal_via_api_needs_sys_seal_and_stops_operations(kq_server: ServerProcess) -> None:
    name = unique("seal-api")
    with kq_server.client() as http:
        create_key(http, name, "aes-256-gcm")
        text = encrypt(http, name, b"x")["ciphertext"]
        ok(http.put("/v1/policies/no-seal", json={"rules": [
            {"keys": "**", "operations": ["encrypt", "decrypt"]}]}))
        weak = ok(http.post("/v1/auth/tokens", json={"policies": ["no-seal"]}))["token"]
    with kq_server.client(weak) as http:
        assert_error(http.post("/v1/sys/seal"), 403, "forbidden")
    assert httpx.get(f"{kq_server.addr}/v1/sys/health").status_code == 200
    with httpx.Client(base_url=kq_server.addr) as anonymous:
        assert_error(anonymous.post("/v1/sys/seal"), 401, "unauthenticated")

    _seal(kq_server)
    assert httpx.get(f"{kq_server.addr}/v1/sys/health").status_code == 503
    assert _status(kq_server)["sealed"] is True
    with kq_server.client() as http:
        assert_error(http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": ""}),
                     503, "sealed")
        assert_error(http.post("/v1/decrypt", json={"ciphertext": text}), 503, "sealed")
        assert_error(http.post("/v1/random", json={"bytes": 8}), 503, "sealed")
    kq_server.unseal()
    with kq_server.client() as http:
        assert unb64(ok(http.post("/v1/decrypt", json={"ciphertext": text}))["plaintext"]) == b"x"
