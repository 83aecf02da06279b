"""What the sync and async clients share about HTTP: headers, TLS, failures."""

from __future__ import annotations

import ssl
from typing import Any

from .. import __version__
from ._protocol import Call
from .errors import TransportError

USER_AGENT = f"keyquorum-python/{__version__}"


def client_options(addr: str, timeout: float | None, verify: bool | str) -> dict[str, Any]:
    """Keyword arguments for ``httpx.Client`` / ``httpx.AsyncClient``."""
    tls: bool | ssl.SSLContext = (
        ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
    )  # a path is a CA bundle to trust
    return {"base_url": addr, "timeout": timeout, "verify": tls,
            "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"}}


def request_options(call: Call[Any], token: str | None) -> dict[str, Any]:
    """Keyword arguments for one ``request()``; the token goes only into a header."""
    headers = {"Authorization": f"Bearer {token}"} if call.auth and token else {}
    return {"params": list(call.params) or None, "json": call.json, "headers": headers}


def transport_error(exc: Exception, addr: str) -> TransportError:
    # The message names the address and the failure kind; httpx messages carry no headers.
    return TransportError(f"cannot reach {addr}: {type(exc).__name__}: {exc}", addr=addr)
