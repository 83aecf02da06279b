"""SDK errors as the one line the CLI prints: ``error: <code>: <message>``.

An API error already carries a stable code and the server's words. A connection
failure carries the HTTP library's text (``UnsupportedProtocol: Request URL is
missing an 'http://' or 'https://' protocol``, ``[SSL: WRONG_VERSION_NUMBER]``),
which names the symptom, not the mistake; ``describe`` says what is wrong and
what to type instead, and falls back to the library's text when it does not
recognise the failure.
"""

from __future__ import annotations

import errno
import ssl
import sys
from collections.abc import Iterator
from typing import Any


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _connection_words(addr: str, causes: list[BaseException]) -> str | None:
    names = {type(c).__name__ for c in causes}
    text = " ".join(str(c) for c in causes)
    if "UnsupportedProtocol" in names:
        return (f"the address {addr!r} has no scheme: write it as http://HOST:PORT "
                "(or https:// for a TLS server)")
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        plain = addr.replace("https://", "http://", 1)
        return (f"TLS to {addr}, but the server there speaks plain HTTP; "
                f"use {plain} (or start the server with --tls-cert/--tls-key)")
    if "CERTIFICATE_VERIFY_FAILED" in text or any(
            isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        reason = next((c.verify_message for c in causes
                       if isinstance(c, ssl.SSLCertVerificationError) and c.verify_message),
                      "certificate verify failed")
        return (f"the TLS certificate of {addr} is not trusted ({reason}); give its CA "
                "with --ca-cert or KEYQUORUM_CACERT")
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or any(
            isinstance(c, OSError) and c.errno == errno.ECONNREFUSED for c in causes):
        return (f"nothing is listening at {addr} (connection refused); is the server "
                "running (`keyquorum dev`, `keyquorum server`) and is KEYQUORUM_ADDR right?")
    if "RemoteProtocolError" in names and addr.startswith("http://"):
        tls = addr.replace("http://", "https://", 1)
        return (f"{addr} closed the connection without an HTTP answer; if the server "
                f"uses TLS, use {tls}")
    if any("Timeout" in n for n in names):
        return f"no answer from {addr} in time (timed out)"
    if "Name or service not known" in text or "nodename nor servname" in text or \
            "Temporary failure in name resolution" in text:
        return f"cannot find the host of {addr} (name resolution failed)"
    return None


def describe(exc: Any) -> tuple[str, str]:
    """``(code, message)`` for an SDK exception."""
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None) or str(exc)
    if code is not None:
        return str(code), str(message)
    addr = getattr(exc, "addr", None) or "the server"
    words = _connection_words(addr, list(_chain(exc))[1:])
    return "unreachable", words or str(message)


def one_line(exc: BaseException) -> tuple[str, int] | None:
    """The line the CLI prints for ``exc`` and its exit status; ``None`` for anything else.

    An answered API error, a failed connection or a token file that may not be used
    exits 1; the SDK refusing an argument before sending (a ``ValueError``) exits 2,
    like a usage error. Anything else is a bug and keeps its traceback. The Typer tree
    and ``keyquorum.cli.shortcut`` both print through here.
    """
    # Modules never imported cannot have raised: look them up rather than import them.
    errors = sys.modules.get("keyquorum.client.errors")
    if errors is not None and isinstance(
            exc, (errors.KeyquorumAPIError, errors.TransportError)):
        code, message = describe(exc)
        return f"error: {code}: {message}", 1
    token_file = sys.modules.get("keyquorum.token_file")
    if token_file is not None and isinstance(exc, token_file.TokenFileError):
        return f"error: token_file: {exc}", 1
    if isinstance(exc, ValueError):
        return f"error: invalid_argument: {exc}", 2
    return None
