"""The synchronous keyquorum client, and the source of the asynchronous one.

``_async_client.py`` is generated from this file by ``scripts/gen-async``: edit
here, then run it (``tests/client/test_sdk_twins.py`` fails while it is stale).

The operations are in its base classes, one module per group, each the source of
its async twin in the same way: ``_client_system.py`` (init, seals, custodians, break
glass), ``_client_keys.py`` (key lifecycle), ``_client_admin.py`` (tokens, policies,
audit, approvals, reports) and ``_client_crypto.py`` (cryptographic operations). This
class holds the connection: ``_run`` sends one call, ``_download`` streams one.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import IO, TypeVar

import httpx

from . import _protocol as api
from ._client_admin import AdminMethods
from ._client_crypto import CryptoMethods
from ._client_keys import KeyMethods
from ._client_system import SystemMethods
from ._protocol import Call
from ._transport import client_options, read_answer, request_options, transport_error

T = TypeVar("T")


class Client(SystemMethods, KeyMethods, AdminMethods, CryptoMethods):
    """A keyquorum client over HTTP.

    ``addr`` defaults to ``$KEYQUORUM_ADDR`` or ``http://127.0.0.1:8200``;
    ``token`` to ``$KEYQUORUM_TOKEN``. ``verify`` is ``True``, ``False`` or the
    path of a CA bundle. Binary values are ``bytes``; ciphertexts are ``str``.
    API errors raise a ``KeyquorumAPIError`` subclass, connection failures
    ``TransportError``. Use as a context manager, or call ``close()``.
    """

    def __init__(self, addr: str | None = None, token: str | None = None, *,
                 timeout: float | None = api.DEFAULT_TIMEOUT, verify: bool | str = True,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.addr = api.resolve_addr(addr)
        self._token = api.resolve_token(token)
        # transport: httpx's own hook, for a proxy or an app served in this process
        # (the tests reach an in-process server this way); None: plain HTTP(S) to addr.
        self._http = httpx.Client(**client_options(self.addr, timeout, verify),
                                  transport=transport)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(addr={self.addr!r})"  # never the token

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: Call[T]) -> T:
        try:
            answer = self._http.request(call.method, call.path,
                                        **request_options(call, self._token))
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.addr) from exc
        return read_answer(call, answer)

    def _download(self, call: Call[None], out: IO[bytes],
                  progress: Callable[[int], None] | None = None) -> int:
        written = 0
        try:
            with self._http.stream(call.method, call.path,
                                   **request_options(call, self._token)) as answer:
                if answer.status_code != 200:
                    answer.read()
                    read_answer(call, answer)  # raises the API error
                for chunk in answer.iter_bytes():
                    out.write(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.addr) from exc
        return written
