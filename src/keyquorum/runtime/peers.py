"""How one server process tells its sibling workers about changes, and asks for unseal.

With ``--workers N`` the server runs N processes on one listening socket and one
store (see ``keyquorum.runtime.cluster``). Each process keeps its own unsealed keyring
and caches, so every change that a cache holds must reach the others: the
barrier opening or sealing, a key's new revision, a revoked token, a changed
policy. Unseal shares go to the supervisor, which alone holds unseal progress,
so shares submitted to different workers count together.

A single-process server uses ``NoPeers``: every call is a no-op.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from keyquorum.errors import KeyquorumError, Sealed
from keyquorum.failure_log import describe_failure

log = logging.getLogger("keyquorum.peers")
_LENGTH = struct.Struct(">I")
MAX_MESSAGE = 1 << 20


def send_message(sock: socket.socket, message: dict[str, Any], lock: threading.Lock) -> None:
    data = json.dumps(message).encode()
    with lock:
        sock.sendall(_LENGTH.pack(len(data)) + data)


def read_message(sock: socket.socket) -> dict[str, Any] | None:
    """One framed message, or None when the other side has gone away."""
    header = _read_exact(sock, _LENGTH.size)
    if header is None:
        return None
    (size,) = _LENGTH.unpack(header)
    if size > MAX_MESSAGE:
        raise ValueError("peer message too large")
    body = _read_exact(sock, size)
    return None if body is None else json.loads(body)


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = b""
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return chunks


class NoPeers:
    """A server alone: nothing to tell, unseal progress is kept locally."""

    active = False

    def announce(self, event: dict[str, Any]) -> None:
        return None

    def unseal(self, body: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("unseal goes through the local seal when there are no peers")


class PeerLink:
    """A worker's line to the supervisor: announcements out, changes and answers in."""

    active = True

    def __init__(self, sock: socket.socket, apply: Callable[[dict[str, Any]], None]) -> None:
        self._sock = sock
        self._apply = apply
        self._send_lock = threading.Lock()
        self._answers: dict[int, dict[str, Any]] = {}
        self._answered = threading.Condition()
        self._next_id = 0
        self._thread = threading.Thread(target=self._read_loop, name="keyquorum-peers",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def announce(self, event: dict[str, Any]) -> None:
        send_message(self._sock, {"op": "broadcast", "event": event}, self._send_lock)

    def unseal(self, body: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Ask the supervisor (which holds the progress); it opens every worker at quorum."""
        with self._answered:
            self._next_id += 1
            request_id = self._next_id
        send_message(self._sock, {"op": "unseal", "id": request_id, **body}, self._send_lock)
        with self._answered:
            if not self._answered.wait_for(lambda: request_id in self._answers, timeout):
                raise Sealed("the unseal supervisor did not answer")
            answer = self._answers.pop(request_id)
        if "error" in answer:
            raise _error(answer["error"])
        return answer

    def _read_loop(self) -> None:
        while True:
            try:
                message = read_message(self._sock)
            except (OSError, ValueError):
                message = None
            if message is None:
                # Without the supervisor this worker can no longer stay coherent with its
                # siblings: drop the secrets and stop (uvicorn shuts down on SIGTERM).
                log.error("lost the supervisor; sealing and stopping this worker")
                self._apply({"op": "seal"})
                os.kill(os.getpid(), signal.SIGTERM)
                return
            if message.get("op") == "answer":
                with self._answered:
                    self._answers[int(message["id"])] = message
                    self._answered.notify_all()
                continue
            try:
                self._apply(message)
            except Exception as exc:  # one bad event must not stop the link
                log.error("could not apply a change from a sibling worker: %s",
                          describe_failure(exc))


def _error(body: dict[str, Any]) -> KeyquorumError:
    from keyquorum.errors import ALL_ERRORS

    for cls in ALL_ERRORS:
        if cls.code == body.get("code"):
            return cls(str(body.get("message", "")))
    return KeyquorumError(str(body.get("message", "")))


def encode_key(root_key: bytes) -> str:
    return base64.b64encode(root_key).decode()


def decode_key(text: str) -> bytes:
    return base64.b64decode(text)
