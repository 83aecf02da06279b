"""The ``keyquorum`` command: global options, error handling, and the command tree.

Every command other than ``dev`` and ``server`` speaks to a running server over
HTTP through ``keyquorum.client``, like any other client. Exit status: 0 on
success, 1 on an API or connection error (or a failed verification), 2 on a
usage error.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__
from ..client import KeyquorumAPIError, TransportError
from . import (
    access_keys,
    approvals,
    audit,
    backup,
    crypto,
    custodians,
    files,
    keys,
    operator,
    policies,
    rekey,
    reports,
    seals,
    server,
    tokens,
)
from ._common import CliState


class KeyquorumGroup(TyperGroup):
    """Turns SDK errors into ``error: <code>: <message>`` on stderr and an exit status."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyquorumAPIError as exc:
            typer.echo(f"error: {exc.code}: {exc.message}", err=True)
            raise typer.Exit(1) from None
        except TransportError as exc:
            typer.echo(f"error: unreachable: {exc.message}", err=True)
            raise typer.Exit(1) from None
        except ValueError as exc:  # the SDK refusing a caller's argument before sending
            typer.echo(f"error: invalid_argument: {exc}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="keyquorum",
    cls=KeyquorumGroup,
    help="keyquorum: a self-hosted key management service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"keyquorum {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    addr: Annotated[str | None, typer.Option(
        "--addr", envvar="KEYQUORUM_ADDR", show_envvar=True,
        help="Server address (default http://127.0.0.1:8200).")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="KEYQUORUM_TOKEN", show_envvar=True, show_default=False,
        help="API token (prefer the environment variable: options show in `ps`).")] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Machine-readable JSON on stdout.")] = False,
    ca_cert: Annotated[str | None, typer.Option(
        "--ca-cert", envvar="KEYQUORUM_CACERT", help="CA bundle to verify the server's TLS.")
    ] = None,
    tls_skip_verify: Annotated[bool, typer.Option(
        "--tls-skip-verify", help="DANGER: do not verify the server's TLS certificate.")
    ] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """keyquorum: a self-hosted key management service."""
    verify: bool | str = False if tls_skip_verify else (ca_cert or True)
    obj = CliState(addr=addr, token=token, json=json_output, verify=verify)
    ctx.obj = obj
    ctx.call_on_close(obj.close)


server.register(app)
crypto.register(app)
app.add_typer(operator.app, name="operator")
app.add_typer(keys.app, name="key")
app.add_typer(tokens.app, name="token")
app.add_typer(access_keys.app, name="access-key")
app.add_typer(policies.app, name="policy")
app.add_typer(audit.app, name="audit")
app.add_typer(approvals.app, name="approval")
operator.app.add_typer(approvals.dual_control_app, name="dual-control")
backup.register(operator.app)
seals.register(operator.app)
operator.app.add_typer(rekey.app, name="rekey")
app.add_typer(custodians.app, name="custodian")
app.add_typer(custodians.share_app, name="share")
app.add_typer(files.app, name="file")
app.add_typer(reports.app, name="report")


_GLOBAL_FLAGS = ("--json", "--tls-skip-verify")


def hoist_global_flags(argv: list[str]) -> list[str]:
    """Let global flags follow the command too (``keyquorum key show K --json``).

    Click only accepts a group's options before the subcommand; people type them
    at the end. Flags (no value) are moved to the front; nothing after ``--`` is
    touched, so a file literally named ``--json`` can still be passed after it.
    """
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [arg for arg in argv[:end] if arg in _GLOBAL_FLAGS]
    rest = [arg for arg in argv[:end] if arg not in _GLOBAL_FLAGS]
    return flags + rest + argv[end:]


def run() -> None:
    """Entry point for the ``keyquorum`` script and ``python -m keyquorum``."""
    app(args=hoist_global_flags(sys.argv[1:]), prog_name="keyquorum")
