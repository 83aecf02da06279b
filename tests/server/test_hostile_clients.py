"""Hostile and broken HTTP clients against a real server process (reliability review F1,
F5, F6): idle and slow clients are cut off, oversized heads refused, a descriptor-limited
server keeps serving while 1,000 idle sockets are open, and honest clients see no change.

Bounds on time here are generous ("closed within 10 s" for a 1 s timeout): they say a
socket was cut, not how fast anything is.
"""

from __future__ import annotations

import re
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kq_support import ServerProcess, configured_server

pytestmark = pytest.mark.server

SHORT = {"header_timeout": 1, "body_timeout": 1, "max_headers": 20}
GENEROUS = 10.0
HEALTH = b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = configured_server(tmp_path_factory.mktemp("hostile"), SHORT, test_clock=False)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=GENEROUS)


def read_until_closed(sock: socket.socket, within: float = GENEROUS) -> tuple[bytes, bool]:
    """Everything the server sends, and whether it closed the connection within ``within``."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return received, False
    except ConnectionResetError:
        pass
    return received, True


def read_response(sock: socket.socket) -> bytes:
    """One whole answer (head and Content-Length body) from a kept-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536) or pytest.fail(f"closed after {received!r}")
    head, body = received.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE)[1])  # type: ignore[index]
    while len(body) < length:
        body += sock.recv(65536) or pytest.fail("closed inside the body")
    return received


def statuses(received: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", received)]


def error_of(received: bytes) -> dict[str, str]:
    import json

    return json.loads(received.split(b"\r\n\r\n", 1)[1])["error"]  # type: ignore[no-any-return]


def server_log(server: ServerProcess) -> str:
    return (server.data_dir.parent / f"server-{server.port}.log").read_text(errors="replace")


def test_a_socket_that_sends_nothing_is_closed_after_the_header_timeout(
        server: ServerProcess) -> None:
    with connect(server) as sock:
        received, closed = read_until_closed(sock)
    assert closed and received == b""  # no one to answer: closed without a word


def test_dripped_headers_are_cut_however_steady_the_drip(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\n")
        deadline = time.monotonic() + GENEROUS
        try:
            while time.monotonic() < deadline:  # a header line every 0.2 s: never idle
                sock.sendall(b"X-Drip: 1\r\n")
                time.sleep(0.2)
        except OSError:
            pass  # cut off while dripping
        received, closed = read_until_closed(sock)
    assert closed and statuses(received) == [408]
    assert error_of(received)["code"] == "invalid_request"
    assert "headers did not arrive within 1 s" in error_of(received)["message"]


def test_a_dripped_body_is_cut_with_408(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /v1/sys/init HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 1000\r\n\r\n{")
        deadline = time.monotonic() + GENEROUS
        try:
            while time.monotonic() < deadline:  # one byte every 0.2 s: under 1 KiB/s
                sock.sendall(b" ")
                time.sleep(0.2)
        except OSError:
            pass
        received, closed = read_until_closed(sock)
    assert closed and statuses(received) == [408]
    assert "body did not arrive in time" in error_of(received)["message"]
    # and nothing was initialized from half a body
    assert httpx.get(f"{server.addr}/v1/sys/seal-status").json()["initialized"] is False


def test_a_body_sent_steadily_for_longer_than_the_body_timeout_is_read_whole(
        server: ServerProcess) -> None:
    body = b'{"share": "not-a-share"' + b" " * 12_000 + b"}"  # 12 KiB over ~3 s, 1 s timeout
    with connect(server) as sock:
        sock.sendall(b"POST /v1/sys/unseal HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        for start in range(0, len(body), 1000):
            sock.sendall(body[start:start + 1000])
            time.sleep(0.25)
        answer = read_response(sock)
    assert statuses(answer) and statuses(answer) != [408]  # the route's own answer
    assert "did not arrive" not in error_of(answer)["message"]


def test_a_header_over_64_kib_is_refused_with_431(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\nX-Big: " +
                     b"a" * (1 << 20) + b"\r\n\r\n")
        received, closed = read_until_closed(sock)
    assert closed and statuses(received) == [431]
    error = error_of(received)
    assert error.pop("request_id")  # the one error shape, with its request id
    assert error == {"code": "too_large", "message": "request header fields exceed 65536 bytes"}


def test_more_header_fields_than_allowed_are_refused_with_431(server: ServerProcess) -> None:
    fields = b"".join(b"X-H%d: v\r\n" % i for i in range(21))
    with connect(server) as sock:
        sock.sendall(b"GET /v1/sys/seal-status HTTP/1.1\r\n" + fields + b"\r\n")
        received, closed = read_until_closed(sock)
    assert closed and statuses(received) == [431]
    assert error_of(received)["message"] == "a request may carry at most 20 header fields"


def test_an_overlong_request_target_is_refused_with_414(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /v1/keys/" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        received, closed = read_until_closed(sock)
    assert closed and statuses(received) == [414]
    assert error_of(received)["code"] == "too_large"


def test_headers_within_the_limits_are_served(server: ServerProcess) -> None:
    # 20 fields (Host, 18, Connection), 54 KiB: just inside both limits
    fields = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 3000) for i in range(18))
    with connect(server) as sock:
        sock.sendall(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: x\r\n" + fields +
                     b"Connection: close\r\n\r\n")
        received, closed = read_until_closed(sock)
    assert closed and statuses(received) == [200]


def test_a_keep_alive_client_idle_longer_than_the_header_timeout_is_still_served(
        server: ServerProcess) -> None:
    # Idle time between requests is uvicorn's keep-alive (5 s), not the 1 s header timeout.
    with connect(server) as sock:
        for _ in range(3):
            sock.sendall(HEALTH)
            assert statuses(read_response(sock)) == [200]
            time.sleep(2)


def test_pipelined_requests_before_garbage_are_answered_in_order_then_400(
        server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(HEALTH * 10 + b"\x00\xff GARBAGE\r\n\r\n" + HEALTH)
        received, closed = read_until_closed(sock)
    assert closed and statuses(received) == [200] * 10 + [400]
    time.sleep(0.5)
    assert "RuntimeError" not in server_log(server)
    assert "unable to perform operation" not in server_log(server)


def test_legit_clients_are_served_while_1000_idle_sockets_are_open_under_256_descriptors(
        tmp_path: Path) -> None:
    # A header timeout far longer than the test: only the connection cap can save the day.
    server = configured_server(tmp_path, {"header_timeout": 600}, test_clock=False)
    server.start()
    idle: list[socket.socket] = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    try:
        server.init()
        server.unseal()
        with server.client() as http:
            http.post("/v1/keys", json={"name": "fd/aes", "spec": "aes-256-gcm"}).raise_for_status()
        assert server.process is not None
        resource.prlimit(server.process.pid, resource.RLIMIT_NOFILE, (256, 256))
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        outcomes = []
        for _ in range(20):  # each on a fresh connection, as a new client would
            with httpx.Client(base_url=server.addr, timeout=GENEROUS,
                              headers={"Authorization": f"Bearer {server.root_token}"}) as c:
                outcomes.append(c.post("/v1/keys/fd/aes/encrypt",
                                       json={"plaintext": "YQ=="}).status_code)
        assert outcomes == [200] * 20
        open_fds = len(list(Path(f"/proc/{server.process.pid}/fd").iterdir()))
        assert open_fds < 256
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def test_with_workers_every_process_cuts_idle_sockets(tmp_path: Path) -> None:
    server = configured_server(tmp_path, SHORT, test_clock=False)
    server.extra_args += ["--workers", "2"]
    server.start()
    try:
        # The kernel spreads connections over both workers: enough sockets reach each.
        sockets = [connect(server) for _ in range(8)]
        for sock in sockets:
            received, closed = read_until_closed(sock)
            assert closed and received == b""
            sock.close()
    finally:
        server.stop()
