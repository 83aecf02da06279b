"""A real PostgreSQL for the tests: made with ``initdb``, started and stopped by the tests.

``PostgresCluster.start()`` finds the PostgreSQL 15+ server binaries (Debian's
``postgresql`` package: ``/usr/lib/postgresql/N/bin``, or ``pg_config --bindir``),
makes a cluster in a fresh directory under /tmp and starts it listening on a Unix
socket in that directory only (no TCP port to collide with another test run).
PostgreSQL refuses to run as root, and CI runs as root: there, every server command
runs through ``runuser`` as the ``postgres`` system user (``nobody`` where there is
none), which owns the directory.

Authentication is real: the superuser ``postgres`` may connect without a password
(the fixture's own administration), every other role needs its SCRAM password. The
databases keyquorum uses belong to the ``keyquorum`` role, which is no superuser,
and which keyquorum reaches with its password from ``KEYQUORUM_DATABASE_PASSWORD``
(or ``database_password_file``, where a test says so), as an operator would.

Each test gets a database of its own in about 50 ms: ``CREATE DATABASE ... TEMPLATE``
copies ``kq_template``, migrated to the newest schema once per cluster. The server
runs without fsync (the tests check behaviour, not durability against power loss).

``StoreDatabases`` gives a test (or a module's shared server) the settings of a new
store on the backend under test: none for SQLite, a database of its own on
PostgreSQL, dropped after.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

OWNER = "keyquorum"
TEMPLATE = "kq_template"
PORT = 5432  # only names the socket file (.s.PGSQL.5432) in the cluster's own directory
_SERVER_OPTIONS = ("-c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200 "
                   "-c shared_buffers=32MB")
_DURABLE_OPTIONS = ("-c listen_addresses='' -c fsync=on -c synchronous_commit=on "
                    "-c max_connections=200 -c shared_buffers=128MB")
"""For ``bench/cluster.py``: every commit flushed, as production runs it."""
_HBA = ("local all postgres trust\n"
        "local all all scram-sha-256\n")


def find_bindir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl`` for PostgreSQL 15 or newer, or None."""
    candidates: list[Path] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        candidates.append(Path(out))
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted((p for p in root.iterdir() if p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
        candidates.extend(p / "bin" for p in versions)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() \
                and _major(bindir) >= 15:
            return bindir
    return None


def _major(bindir: Path) -> int:
    try:
        out = subprocess.run([str(bindir / "pg_ctl"), "--version"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    digits = out.rsplit(" ", 1)[-1].split(".")[0]
    return int(digits) if digits.isdigit() else 0


def _server_user() -> str | None:
    """The user PostgreSQL runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and there is no postgres or nobody user to run "
                       "PostgreSQL as")


class PostgresCluster:
    """One PostgreSQL server of the test session, and databases made from its template."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        self.options = _DURABLE_OPTIONS if durable else _SERVER_OPTIONS
        self.user = _server_user()
        self.base = Path(tempfile.mkdtemp(prefix="kq-pg-", dir="/tmp"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.password = os.urandom(12).hex()
        self.password_file = self.base / "keyquorum.password"
        self._numbers = itertools.count(1)
        self.started = False

    # -- running ----------------------------------------------------------------------

    def _as_server(self, *argv: str, timeout: float = 60) -> None:
        command = list(argv)
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}"
                               f"\n{log}")

    def start(self) -> None:
        """initdb (first time only), then start the server and wait until it answers."""
        if not self.data.exists():
            self.password_file.write_text(self.password + "\n")
            os.chmod(self.password_file, 0o600)
            if self.user is not None:
                entry = pwd.getpwnam(self.user)
                os.chown(self.base, entry.pw_uid, entry.pw_gid)
            self._as_server(str(self.bindir / "initdb"), "-D", str(self.data), "-U",
                            "postgres", "-A", "trust", "-N", "-E", "UTF8",
                            "--locale=C.UTF-8")
            (self.data / "pg_hba.conf").write_text(_HBA)
        self._as_server(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                        str(self.log), "-w", "-t", "60", "-o",
                        f"{self.options} -p {PORT} -c unix_socket_directories='{self.base}'",
                        "start")
        self.started = True
        if not self._has_template():
            self._make_template()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as a crash would); safe if it never started."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._as_server(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m",
                                mode, "-w", "-t", "60", "stop")
        except RuntimeError:
            self._kill_postmaster()
        self.started = False

    def _kill_postmaster(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop the server and delete the cluster's directory."""
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    # -- databases --------------------------------------------------------------------

    def admin(self, dbname: str = "postgres") -> Any:
        """A psycopg connection as the superuser (autocommit), for the fixture's own work."""
        import psycopg

        return psycopg.connect(host=str(self.base), port=PORT, user="postgres",
                               dbname=dbname, autocommit=True)

    def _has_template(self) -> bool:
        with self.admin() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (TEMPLATE,)).fetchone() is not None

    def _make_template(self) -> None:
        from keyquorum.storage.engine import migrate, open_engine

        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {OWNER} LOGIN PASSWORD '{self.password}'")
            conn.execute(f"CREATE DATABASE {TEMPLATE} OWNER {OWNER}")
        engine = open_engine(self.url(TEMPLATE), password_file=self.password_file)
        try:
            migrate(engine)
        finally:
            engine.dispose()

    def url(self, dbname: str) -> str:
        """keyquorum's ``database_url`` for ``dbname`` (the password is not in it)."""
        return f"postgresql://{OWNER}@/{dbname}?host={self.base}&port={PORT}"

    def create_database(self, *, empty: bool = False) -> str:
        """A new database at the newest schema (``empty``: with no table at all); its name."""
        name = f"kq_{os.getpid()}_{next(self._numbers)}"
        template = "template0" if empty else TEMPLATE
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template} OWNER {OWNER}")
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def settings_for(self, dbname: str) -> dict[str, Any]:
        """The settings (as a config file holds them) of a keyquorum on ``dbname``; the
        password comes from ``KEYQUORUM_DATABASE_PASSWORD``, which the ``postgres``
        fixture sets for the session (``password_file`` holds it too, for tests of
        ``database_password_file``)."""
        return {"database_url": self.url(dbname)}


class StoreDatabases:
    """Settings for a new, empty store on the backend under test: nothing for SQLite
    (the store is a file in the data dir), a database of its own on PostgreSQL."""

    def __init__(self, request: pytest.FixtureRequest, backend: str) -> None:
        self.backend = backend
        self._request = request
        self._made: list[str] = []

    @property
    def postgres(self) -> PostgresCluster:
        cluster: PostgresCluster = self._request.getfixturevalue("postgres")
        return cluster

    def new(self) -> dict[str, Any]:
        """As a config file holds them (``database_url``, ``database_password_file``)."""
        if self.backend == "sqlite":
            return {}
        name = self.postgres.create_database()
        self._made.append(name)
        return self.postgres.settings_for(name)

    def new_settings(self) -> dict[str, Any]:
        """As ``Settings`` takes them."""
        return self.new()

    def drop_all(self) -> None:
        made, self._made = self._made, []
        for name in made:
            self.postgres.drop_database(name)
