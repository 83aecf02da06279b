"""Start a keyquorum server: ``run_server`` (the real thing) and ``run_dev`` (development).

``run_server`` starts sealed and is opened only through ``/v1/sys/init`` and
``/v1/sys/unseal``. ``run_dev`` initializes itself on first start with a 2-of-3
Shamir seal, prints the shares and root token once with a loud warning, keeps
them in a 0600 file in the data dir, and unseals itself from it on later starts:
convenient and unsafe, which is why it says so every time.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import uvicorn

from keyquorum.api.app import create_app
from keyquorum.config import Settings, load_config_file
from keyquorum.runtime import hardening, heap
from keyquorum.runtime.http_limits import HttpLimits, cap_warning
from keyquorum.runtime.wiring import build_core, uvicorn_options
from keyquorum.service.core import Core

DEV_INIT_FILE = "dev-init.json"
DEFAULT_ADDR = "http://127.0.0.1:8200"
_LOCK_FILE = "keyquorum.lock"


def _prepare_data_dir(data_dir: Path) -> IO[Any]:
    """Create the data dir (0700) and hold its lock: one server per embedded store."""
    os.umask(0o077)  # every file the server writes (store, WAL, lock) is the owner's alone
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    lock = open(data_dir / _LOCK_FILE, "a")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"error: another keyquorum server is using {data_dir}") from None
    return lock


def _harden(settings: Settings) -> None:
    """No core dumps, not dumpable, memory locked where permitted (review F10)."""
    achieved = hardening.apply(settings.memory_lock)
    print(achieved.summary(), file=sys.stderr)


def _check_port_free(settings: Settings, *, dev: bool) -> None:
    """Refuse to start when the listen address is taken, before anything is created or printed.

    Without this, ``dev`` would make a new store and print its secrets, announce a
    server, and only then fail in uvicorn's bind. The check binds the way uvicorn
    does (SO_REUSEADDR, so a socket in TIME_WAIT is no obstacle) and lets go at once;
    a port taken in the instant between is still reported by uvicorn.
    """
    host, port = settings.host, settings.port
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                command = "keyquorum dev" if dev else "keyquorum server ..."
                raise SystemExit(
                    f"error: {host}:{port} is already in use (another keyquorum, or a Vault "
                    f"dev server?); stop it, or choose a free port: "
                    f"{command} --listen {host}:{port + 1 if port < 65535 else 8201}"
                ) from None
            raise SystemExit(f"error: cannot listen on {host}:{port}: {exc.strerror}") from None


def _serve(core: Core) -> None:
    settings = core.settings
    app = create_app(core)
    heap.settle()  # start-up's objects out of the collector's way (runtime.heap)
    uvicorn.run(app, host=settings.host, port=settings.port, **uvicorn_options(settings))


def run_server(data_dir: Path, listen: str, *, config_file: Path | None = None,
               tls_cert: Path | None = None, tls_key: Path | None = None,
               allow_plain_http: bool = False, unsafe_test_clock: bool = False,
               scheduler_interval: float | None = None, workers: int = 1,
               database_url: str | None = None,
               database_password_file: Path | None = None) -> None:
    settings = Settings(data_dir=data_dir, listen=listen, tls_cert=tls_cert, tls_key=tls_key,
                        allow_plain_http=allow_plain_http, unsafe_test_clock=unsafe_test_clock)
    try:
        if config_file is not None:
            settings = load_config_file(settings, config_file)
        if scheduler_interval is not None:
            settings = replace(settings, scheduler_interval=scheduler_interval)
        if database_url is not None:
            settings = replace(settings, database_url=database_url)
            _warn_if_password_in(database_url)
        if database_password_file is not None:
            settings = replace(settings, database_password_file=database_password_file)
        settings.validate()
    except OSError as exc:
        raise SystemExit(f"error: cannot read the config file: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if workers > 1 and settings.unsafe_test_clock:
        raise SystemExit("error: --unsafe-test-clock needs a single worker (one clock)")
    _check_port_free(settings, dev=False)
    _harden(settings)  # before any secret exists (the --workers children inherit it)
    warning = cap_warning(HttpLimits.from_settings(settings))
    if warning is not None:
        print(f"warning: {warning}", file=sys.stderr)
    _lock = _prepare_data_dir(settings.data_dir)
    if workers > 1:
        from keyquorum.runtime.cluster import run_workers

        run_workers(settings, workers)
        return
    core = build_core(settings)
    state = "sealed" if core.initialized else "uninitialized"
    where = "PostgreSQL" if settings.database_url else str(settings.data_dir)
    print(f"keyquorum listening on {settings.listen} ({state}); data in {where}",
          file=sys.stderr)
    print(_next_step(settings, initialized=core.initialized), file=sys.stderr)
    _serve(core)


def _warn_if_password_in(database_url: str) -> None:
    """A password typed in ``--database`` is in the process list for every local user."""
    from keyquorum.storage.postgres import PASSWORD_ENV, has_password

    if has_password(database_url):
        print("warning: the --database URL holds a password, which every local user can "
              "read in the process list; use --database-password-file or "
              f"{PASSWORD_ENV} instead", file=sys.stderr)


def _next_step(settings: Settings, *, initialized: bool) -> str:
    """What an operator runs next, from another shell (the server keeps this one)."""
    scheme = "https" if settings.tls_cert is not None else "http"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host  # noqa: S104
    host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
    addr = f"  export KEYQUORUM_ADDR={scheme}://{host}:{settings.port}\n"
    if not initialized:
        return ("next, from another shell:\n" + addr +
                "  keyquorum operator init --shares 5 --threshold 3   # once; prints the shares\n"
                "  keyquorum operator unseal                          # then, by each custodian")
    return ("next, from another shell (the store is sealed):\n" + addr +
            "  keyquorum operator unseal        # by custodians, until the threshold")


_AWS_ANY_WARNING = """
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
  --aws-any-credentials: ANY well-formed AWS SigV4 signature is accepted as the
  ROOT identity on the KMS API (as local emulators do for test suites).
  Anyone who can reach this port can use and delete every key. Tests only.
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
"""
_WARNING = """
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
  DEVELOPMENT MODE - NOT FOR REAL KEYS
  The unseal shares and the root token below are also written to
  {path} (mode 0600) so the dev server can unseal itself.
  Anyone who can read that file holds every key in this store.
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
"""


def run_dev(data_dir: Path, listen: str, *, unsafe_test_clock: bool = False,
            aws_any_credentials: bool = False) -> None:
    settings = Settings(data_dir=data_dir, listen=listen, unsafe_test_clock=unsafe_test_clock,
                        aws_any_credentials=aws_any_credentials)
    if aws_any_credentials:
        print(_AWS_ANY_WARNING, file=sys.stderr)
    try:
        settings.validate()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    _check_port_free(settings, dev=True)  # before the store or any secret exists
    _harden(settings)
    _lock = _prepare_data_dir(data_dir)
    core = build_core(settings)
    init_file = data_dir / DEV_INIT_FILE
    if not core.initialized:
        answer = core.init(3, 2, None)
        fd = os.open(init_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"shares": answer["shares"], "root_token": answer["root_token"]}, handle)
        print(_WARNING.format(path=init_file), file=sys.stderr)
        for index, share in enumerate(answer["shares"], start=1):
            print(f"  unseal share {index}: {share}", file=sys.stderr)
        print(f"  root token:     {answer['root_token']}\n", file=sys.stderr)
    elif not init_file.exists():
        raise SystemExit(f"error: {data_dir} was initialized without dev mode; "
                         "use `keyquorum server` and unseal it with its shares")
    saved = json.loads(init_file.read_text())
    for share in saved["shares"][:2]:
        core.unseal(share)
    print(f"keyquorum dev server on http://{settings.listen} (unsealed, DEVELOPMENT MODE)",
          file=sys.stderr)
    print(_dev_login(saved["root_token"], settings), file=sys.stderr)
    _serve(core)


def _dev_login(root_token: str, settings: Settings) -> str:
    """Leave the root token in the per-user token file, as ``vault server -dev`` does.

    The command line on this machine then works at once; ``$KEYQUORUM_TOKEN`` still
    takes precedence. Returns the lines to print (never the token itself).
    """
    from keyquorum.token_file import write_token

    addr = f"http://{settings.listen}"
    hint = "" if addr == DEFAULT_ADDR else f"  export KEYQUORUM_ADDR={addr}\n"
    try:
        path = write_token(root_token)
    except OSError as exc:
        return (f"  (could not write the token file: {exc.strerror}; the root token is in "
                f"{settings.data_dir / DEV_INIT_FILE})\n{hint}").rstrip("\n")
    return (f"  the CLI on this machine is logged in as root (token in {path}, mode 0600)\n"
            f"{hint}  try: keyquorum status").rstrip("\n")
