"""What the sync and async clients share about HTTP: headers, TLS, answers, failures."""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING, Any, TypeVar

from .. import __version__
from ._protocol import Call, finish
from .errors import TransportError

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

USER_AGENT = f"keyquorum-python/{__version__}"


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def _tls_is_unused(addr: str) -> bool:
    """True when this client will never make a TLS connection: plain HTTP, no proxy."""
    return addr.lower().startswith("http://") and not any(
        name.lower() in _PROXY_VARIABLES for name in os.environ)


def client_options(addr: str, timeout: float | None, verify: bool | str) -> dict[str, Any]:
    """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``."""
    tls: bool | ssl.SSLContext = (
        ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
    )  # a path is a CA bundle to trust
    if tls is True and _tls_is_unused(addr):
        # httpx builds its TLS context when the client is made, reading every CA in
        # certifi's bundle: 30-40 ms, a fifth of a `keyquorum encrypt`, for a plain-HTTP
        # address (`keyquorum dev`) that never uses it. A context that trusts no CA costs
        # nothing, and TLS reached by surprise still fails verification, never passes.
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return {"base_url": addr, "timeout": timeout, "verify": tls,
            "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"}}


def request_options(call: Call[Any], token: str | None) -> dict[str, Any]:
    """Keyword arguments for one ``request()``; the token goes only into a header."""
    headers = {"Authorization": f"Bearer {token}"} if call.auth and token else {}
    return {"params": list(call.params) or None, "json": call.json, "headers": headers}


def read_answer(call: Call[T], answer: httpx.Response) -> T:
    """The value of ``call``'s answer, or its ``KeyquorumAPIError`` raised (the body must
    have been read: a streamed answer reads it first)."""
    return finish(call, answer.status_code, answer.headers.get("x-request-id"),
                  answer.content)


def transport_error(exc: Exception, addr: str) -> TransportError:
    # The message names the address and the failure kind; httpx messages carry no headers.
    return TransportError(f"cannot reach {addr}: {type(exc).__name__}: {exc}", addr=addr)
