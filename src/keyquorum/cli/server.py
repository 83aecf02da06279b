"""``keyquorum dev`` and ``keyquorum server``: run the service in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def dev(
    data_dir: Annotated[Path, typer.Option(
        "--data-dir", help="Where the dev server keeps its data.")] = Path("./.keyquorum"),
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to listen on.")
                      ] = "127.0.0.1:8200",
    unsafe_test_clock: Annotated[bool, typer.Option(
        "--unsafe-test-clock", help="DANGER: let clients move the server's clock (tests only).")
    ] = False,
    aws_any_credentials: Annotated[bool, typer.Option(
        "--aws-any-credentials",
        help="DANGER: accept any well-formed AWS signature on the KMS API as root (tests).")
    ] = False,
) -> None:
    """Run a development server: initialized, unsealed, plain HTTP. Never for real keys."""
    from ..runtime.server import run_dev  # lazily: the CLI's other commands need no server code

    run_dev(data_dir, listen, unsafe_test_clock=unsafe_test_clock,
            aws_any_credentials=aws_any_credentials)


def server(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Data directory.")],
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to listen on.")],
    config: Annotated[Path | None, typer.Option(
        "--config", help="Configuration file.", exists=True, dir_okay=False)] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        "--tls-cert", help="TLS certificate (PEM).", exists=True, dir_okay=False)] = None,
    tls_key: Annotated[Path | None, typer.Option(
        "--tls-key", help="TLS private key (PEM).", exists=True, dir_okay=False)] = None,
    allow_plain_http: Annotated[bool, typer.Option(
        "--allow-plain-http",
        help="Serve plain HTTP on a non-loopback address (behind a TLS proxy); loopback "
             "needs no flag.")
    ] = False,
    unsafe_test_clock: Annotated[bool, typer.Option(
        "--unsafe-test-clock", help="DANGER: let clients move the server's clock (tests only).")
    ] = False,
    scheduler_interval: Annotated[float | None, typer.Option(
        "--scheduler-interval", help="Seconds between background job runs.", min=0.01)
    ] = None,
    workers: Annotated[int, typer.Option(
        "--workers", help="Server processes sharing the socket and store (use the cores).",
        min=1, max=64)] = 1,
    database: Annotated[str | None, typer.Option(
        "--database", help="postgresql://USER@HOST:PORT/DBNAME instead of the SQLite file "
        "in --data-dir. Give the password with --database-password-file or "
        "KEYQUORUM_DATABASE_PASSWORD, not in the URL.", show_default=False)] = None,
    database_password_file: Annotated[Path | None, typer.Option(
        "--database-password-file", help="File holding the database password (read at "
        "every new connection).", exists=True, dir_okay=False)] = None,
) -> None:
    """Run the keyquorum server (it starts sealed; use `operator init` / `operator unseal`)."""
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    from ..runtime.server import run_server  # lazily: the CLI's other commands need no server code

    run_server(data_dir, listen, config_file=config, tls_cert=tls_cert, tls_key=tls_key,
               allow_plain_http=allow_plain_http, unsafe_test_clock=unsafe_test_clock,
               scheduler_interval=scheduler_interval, workers=workers,
               database_url=database, database_password_file=database_password_file)
