"""Which audit chain a serving process appends to: its node's name in the registry.

**SQLite: one chain, node 1, for every process.** SQLite has one writer at a time
(the database's write lock, and with ``--workers N`` the audit commit file lock
that wakes the next writer at once), so chains per worker would let no append run
beside another; they would only add chains to verify and braid. The ``--workers``
processes of an SQLite store therefore share node 1's chain, as they shared the one
chain before there were several.

**PostgreSQL: a chain per process.** Nodes on one PostgreSQL append at the same
time, and a shared head row would make each group of every node wait for the
others' commits (a network round trip and a WAL flush each): the cap chains per
node remove. A process is named by the operator's ``node_name`` (the name its
enrolment uses too) or, without one, by its host name and data directory, so two
nodes on one host stay apart and a restarted node continues its own chain rather
than starting another. With ``--workers N`` every worker is a node of its own
(``<name>/w<i>`` for worker i > 0, worker 0 keeping the plain name): the workers of
one host then never wait for each other's commits either, and their chains stay
stable as long as the worker count does (a smaller count leaves the extra chains
as they were: still verified and braided, no longer growing). Two processes that
end up with the same name share a chain, which is correct (their head row
serializes them), only slower.
"""

from __future__ import annotations

import hashlib
import socket

from keyquorum.config import Settings

NAME_WIDTH = 255  # audit_nodes.name


def audit_node_name(settings: Settings, dialect: str, worker: int = 0) -> str | None:
    """The registry name of this process's chain; None means node 1 (SQLite)."""
    if dialect != "postgresql":
        return None
    base = settings.node_name or f"{socket.gethostname()}:{settings.data_dir.resolve()}"
    name = base if worker == 0 else f"{base}/w{worker}"
    if len(name) > NAME_WIDTH:  # a very long data directory: keep it unique, not whole
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        name = f"{name[:NAME_WIDTH - 17]}~{digest}"
    return name
