"""A refusal carries the facts its step had learned, so its audit record names them.

A change hands its facts to its own record as values (``write_audit_in(detail=)``);
when the step is refused part way (a wrong share after the custodian's index was
known, a rekey share after the ceremony's nonce was checked), the error carries
what was known by then on ``error.audit_detail``, and the pipeline writes it on
the refusal's record. Facts gathered as the step runs go into the dict passed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from keyquorum.errors import KeyquorumError


@contextmanager
def refusals_carry(facts: dict[str, str]) -> Iterator[dict[str, str]]:
    """Yield ``facts`` to fill; a ``KeyquorumError`` leaving the block carries them."""
    try:
        yield facts
    except KeyquorumError as exc:
        if facts:
            exc.audit_detail = {**facts, **(exc.audit_detail or {})}
        raise
