"""The table of KMS operations: AWS action name → handler, with its native twin's name.

Handlers register themselves (``@operation("Encrypt", "encrypt")``) in the module of
their group; ``kms.operations`` imports every group, so an action not in the table
is one keyquorum does not offer (``UnsupportedOperationException``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from keyquorum.kms.call import KmsCall

Handler = Callable[[KmsCall], Awaitable[dict[str, Any]]]
OPERATIONS: dict[str, Handler] = {}


def operation(action: str, native: str) -> Callable[[Handler], Handler]:
    """Register ``action``; ``native`` is the audit operation of its refusals."""
    def register(handler: Handler) -> Handler:
        handler.operation = native  # type: ignore[attr-defined]
        OPERATIONS[action] = handler
        return handler

    return register
