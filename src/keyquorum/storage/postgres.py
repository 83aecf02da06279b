"""PostgreSQL as the store: the URL keyquorum accepts, where the password comes from, the pool.

keyquorum speaks to PostgreSQL 15+ through psycopg 3 (``pip install
'keyquorum[postgresql]'``) with SQLAlchemy's own connection pool: one pool for both
dialects, so the repositories, the group commit and the precompiled statements of
``prepared.py`` run unchanged on either.

The password never has to be written on a command line (where every local user can
read it in the process list) nor in the URL. In order:

1. a password in the URL itself (accepted, but the CLI warns when it was typed there);
2. ``database_password_file``: a file holding it, read again for every new connection,
   so a rotated password takes effect without a restart;
3. the ``KEYQUORUM_DATABASE_PASSWORD`` environment variable;
4. libpq's own sources (``PGPASSFILE`` or ``~/.pgpass``, ``PGPASSWORD``), which psycopg
   reads when none of the above gave one.

The password is handed to the driver at connect time only: it is in no URL keyquorum
prints, no error and no repr (SQLAlchemy masks a URL's password as ``***``).

Connections are made to fail fast rather than hang a request: a connect gives up after
``CONNECT_TIMEOUT`` seconds, TCP keepalives notice a peer that vanished, a pooled
connection is tested before use (``pool_pre_ping``), and waiting for a free pooled
connection is bounded. A lost connection invalidates the pool, so once PostgreSQL is
back the next requests reconnect by themselves (``storage/errors.py`` turns the
failures meanwhile into 503 ``storage_unavailable``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

DRIVER = "postgresql+psycopg"
PASSWORD_ENV = "KEYQUORUM_DATABASE_PASSWORD"  # noqa: S105 - a variable's name, not a secret
SCHEMES = ("postgresql", "postgres", DRIVER)

CONNECT_TIMEOUT = 5
"""Seconds a new connection may take before the request fails (libpq ``connect_timeout``)."""
POOL_TIMEOUT = 10.0
"""Seconds a request waits for a pooled connection when all are busy."""
POOL_SIZE = 10
MAX_OVERFLOW = 10


def is_postgresql(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (any scheme keyquorum accepts for it)."""
    scheme = url.split(":", 1)[0].lower()
    return scheme in SCHEMES or scheme.startswith("postgresql+")


def engine_url(url: str) -> URL:
    """``url`` for SQLAlchemy: ``postgresql://`` and ``postgres://`` run on psycopg 3.

    Another driver (``postgresql+psycopg2://``, ...) is refused: keyquorum is tested on
    psycopg 3 only, and SQLAlchemy would otherwise pick psycopg2 for a bare scheme.
    """
    try:
        parsed = make_url(url)
    except Exception:  # the text may hold a password: never repeat it
        raise ValueError("database_url is not a valid postgresql:// URL") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername=DRIVER)
    if parsed.drivername != DRIVER:
        raise ValueError(f"database_url: use postgresql:// (psycopg 3), not "
                         f"{parsed.drivername}://")
    if not parsed.database:
        raise ValueError("database_url must name a database: postgresql://HOST/DBNAME")
    return parsed


def has_password(url: str) -> bool:
    """Whether ``url`` carries a password (the CLI warns: it shows in the process list)."""
    try:
        return bool(make_url(url).password)
    except Exception:
        return False


def read_password_file(path: Path) -> str:
    """The password in ``path``: its first line, without the line end."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read database_password_file {path}: {exc.strerror}") from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise ValueError(f"database_password_file {path} is empty")
    return password


def open_postgresql(url: str, *, password_file: Path | None = None) -> Engine:
    """An engine on PostgreSQL through psycopg 3, with a bounded, self-healing pool."""
    try:
        import psycopg  # noqa: F401 - only to say what is missing, before SQLAlchemy does
    except ImportError:
        raise ValueError("PostgreSQL needs psycopg 3: pip install 'keyquorum[postgresql]'"
                         ) from None
    target = engine_url(url)
    if password_file is not None:
        read_password_file(password_file)  # unreadable or empty: say so at start-up
    engine = create_engine(
        target, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW, pool_timeout=POOL_TIMEOUT,
        pool_pre_ping=True, hide_parameters=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT, "application_name": "keyquorum",
                      "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                      "keepalives_count": 3})
    if target.password is None:
        event.listen(engine, "do_connect", _password_hook(password_file))
    return engine


def _password_hook(password_file: Path | None) -> Any:
    """A ``do_connect`` listener giving the driver the password from its source, if any."""
    from_env = os.environ.get(PASSWORD_ENV) or None

    def supply(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        if password_file is not None:
            cparams["password"] = read_password_file(password_file)  # rotation: read anew
        elif from_env is not None:
            cparams["password"] = from_env

    return supply


def check_database_url(url: str) -> None:
    """Refuse, at start-up, a ``database_url`` keyquorum cannot open (the message never
    repeats the URL: it may hold a password)."""
    if url.startswith("sqlite:"):
        return
    if not is_postgresql(url):
        raise ValueError("database_url must be postgresql://HOST/DBNAME (or sqlite:///PATH)")
    engine_url(url)
