"""Log lines for unexpected failures that say where and what, never an exception's text.

``log.exception`` and a server's "Exception in ASGI application" print the
exception's message, and messages carry what the code was holding: a database
driver puts the statement's bound parameters in its (token hashes, wrapped key
blobs), a decoder may quote the share or body it refused. A key service's log is
read by more people than its keys may be, so unexpected failures are logged as
their kind (type, and a driver's SQLSTATE or SQLite code) and the innermost frames
of their traceback (file, line and function), which is enough to find the bug.
"""

from __future__ import annotations

import traceback
from pathlib import PurePath

from keyquorum.storage.errors import failure_kind

FRAMES = 4
"""Innermost traceback frames named per failure."""


def describe_failure(exc: BaseException) -> str:
    """``kind at file:line in function < ...`` (innermost first), and what it came from."""
    parts = [f"{failure_kind(exc)}{_where(exc)}"]
    cause = _cause_of(exc)
    while cause is not None and len(parts) <= 3:
        parts.append(f"from {failure_kind(cause)}{_where(cause)}")
        cause = _cause_of(cause)
    return "; ".join(parts)


def _cause_of(exc: BaseException) -> BaseException | None:
    """What Python would print as this exception's cause or context."""
    return exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-FRAMES:]
    if not frames:
        return ""
    return " at " + " < ".join(
        f"{PurePath(frame.filename).name}:{frame.lineno} in {frame.name}"
        for frame in reversed(frames))
