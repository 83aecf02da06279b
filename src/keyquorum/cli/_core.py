"""What the CLI needs that needs no Typer: the global options, the client, pairs, JSON.

``keyquorum.cli.shortcut`` answers a plain ``encrypt`` or ``decrypt`` with these
alone (Typer was a fifth of such a call's start-up, ``bench/cli.py``), and
``_common`` builds the helpers every Typer command uses on the same functions, so
the two roads read the same options and print the same JSON.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import Client


@dataclass
class CliState:
    """The global options, and the one client built from them on first use."""

    addr: str | None = None
    token: str | None = None
    json: bool = False
    verify: bool | str = True
    _client: Client | None = None

    @classmethod
    def from_options(cls, addr: str | None, token: str | None, json_output: bool,
                     ca_cert: str | None, tls_skip_verify: bool) -> CliState:
        """The state for ``keyquorum``'s global options as given (after the environment)."""
        verify: bool | str = False if tls_skip_verify else (ca_cert or True)
        return cls(addr=addr, token=token, json=json_output, verify=verify)

    def __repr__(self) -> str:
        return f"CliState(addr={self.addr!r}, json={self.json})"  # never the token

    def client(self) -> Client:
        """The client; a token file that may not be used raises ``TokenFileError``."""
        if self._client is None:
            from ..client import Client

            self._client = Client(self.addr, self.resolved_token(), verify=self.verify)
        return self._client

    def resolved_token(self) -> str | None:
        """``--token``, else ``$KEYQUORUM_TOKEN`` (both in ``token``), else the token file.

        A token file that may not be used (readable by others, not a regular file)
        raises ``keyquorum.token_file.TokenFileError``, whose message says what to do;
        the CLI prints it as ``error: token_file: ...`` (``_errors.one_line``).
        """
        if self.token:
            return self.token
        from ..token_file import read_token

        return read_token()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def split_pair(pair: str) -> tuple[str, str] | None:
    """``"k=v"`` as ``("k", "v")`` (the value may hold ``=``); ``None`` without a name or ``=``."""
    name, sep, value = pair.partition("=")
    if not sep or not name:
        return None
    return name, value


def jsonable(value: Any) -> Any:
    """A dataclass answer as plain JSON values: bytes as base64, times as RFC 3339."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """What ``--json`` prints for ``value`` (without the final newline)."""
    return json.dumps(jsonable(value), indent=2, sort_keys=False)
