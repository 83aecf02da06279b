"""The ``keyquorum`` command tree: global options, error handling, lazily loaded commands.

``keyquorum.cli.main`` is the entry point; it answers ``--version`` before this
module (and Typer) is imported.

Every command other than ``dev`` and ``server`` speaks to a running server over
HTTP through ``keyquorum.client``, like any other client. Exit status: 0 on
success, 1 on an API or connection error (or a failed verification), 2 on a
usage error.

The command tree is loaded lazily: a shell script calling ``keyquorum encrypt``
a hundred times pays Python's start-up each time, so a call imports only the
module of the command it runs (``bench/cli.py`` measures it). The top level
knows each command's name and one-line help from ``COMMANDS`` alone; a test
checks those lines against the commands' own help so they cannot drift.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer
from typer.core import TyperGroup

from .. import __version__
from ._core import CliState
from ._help import plain_command, plain_group, plain_help_option, plain_params

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter


class Entry(NamedTuple):
    """A top-level command: how to load it, and its line in ``keyquorum --help``."""

    load: Callable[[], typer.Typer | Callable[..., Any]]
    help: str


def _server(name: str) -> Callable[[], Callable[..., Any]]:
    def load() -> Callable[..., Any]:
        from . import server

        commands: dict[str, Callable[..., Any]] = {"dev": server.dev, "server": server.server}
        return commands[name]
    return load


def _crypto(name: str) -> Callable[[], Callable[..., Any]]:
    def load() -> Callable[..., Any]:
        from . import crypto

        return crypto.COMMANDS[name]
    return load


def _session(name: str) -> Callable[[], Callable[..., Any]]:
    def load() -> Callable[..., Any]:
        from . import session

        return session.COMMANDS[name]
    return load


def _operator() -> typer.Typer:
    from . import approvals, backup, generate_root, migrate_storage, operator, rekey, seals

    if not getattr(operator.app, "_kq_composed", False):  # once per process
        operator.app.add_typer(approvals.dual_control_app, name="dual-control")
        backup.register(operator.app)
        migrate_storage.register(operator.app)
        seals.register(operator.app)
        operator.app.add_typer(rekey.app, name="rekey")
        operator.app.add_typer(generate_root.app, name="generate-root")
        operator.app._kq_composed = True  # type: ignore[attr-defined]
    return operator.app


def _keys() -> typer.Typer:
    from . import keys

    return keys.app


def _tokens() -> typer.Typer:
    from . import tokens

    return tokens.app


def _access_keys() -> typer.Typer:
    from . import access_keys

    return access_keys.app


def _policies() -> typer.Typer:
    from . import policies

    return policies.app


def _audit() -> typer.Typer:
    from . import audit

    return audit.app


def _approvals() -> typer.Typer:
    from . import approvals

    return approvals.app


def _custodians() -> typer.Typer:
    from . import custodians

    return custodians.app


def _share() -> typer.Typer:
    from . import custodians

    return custodians.share_app


def _files() -> typer.Typer:
    from . import files

    return files.app


def _reports() -> typer.Typer:
    from . import reports

    return reports.app


COMMANDS: dict[str, Entry] = {
    "status": Entry(_session("status"),
                    "Seal state, node, quorum margin and who you are, on one screen."),
    "login": Entry(_session("login"),
                   "Store a token for this user's later commands (kept 0600, like Vault's)."),
    "logout": Entry(_session("logout"), "Forget the stored token (the token itself stays "
                    "valid: `token revoke` ends it)."),
    "dev": Entry(_server("dev"),
                 "Run a development server: initialized, unsealed, plain HTTP. Never for "
                 "real keys."),
    "server": Entry(_server("server"),
                    "Run the keyquorum server (it starts sealed; use `operator init` / "
                    "`operator unseal`)."),
    "encrypt": Entry(_crypto("encrypt"),
                     "Encrypt FILE or stdin under KEY; prints the ciphertext (text)."),
    "decrypt": Entry(_crypto("decrypt"),
                     "Decrypt a ciphertext from FILE or stdin; writes the raw plaintext to "
                     "stdout or --out."),
    "reencrypt": Entry(_crypto("reencrypt"),
                       "Re-encrypt a ciphertext under the primary version (or --to KEY); "
                       "plaintext never leaves."),
    "datakey": Entry(_crypto("datakey"),
                     "Generate a data key wrapped under KEY (and its plaintext, base64)."),
    "sign": Entry(_crypto("sign"),
                  "Sign FILE or stdin (or a --digest) with KEY; prints the signature (base64)."),
    "verify": Entry(_crypto("verify"),
                    "Verify a signature over FILE or stdin (or a --digest); exit 1 when "
                    "invalid."),
    "mac": Entry(_crypto("mac"), "Compute the MAC of FILE or stdin with KEY; prints it (base64)."),
    "verify-mac": Entry(_crypto("verify-mac"),
                        "Check a MAC over FILE or stdin; exit 1 when invalid."),
    "decapsulate": Entry(_crypto("decapsulate"),
                         "Recover the shared secret of an encapsulation made with KEY's public "
                         "key (base64)."),
    "random": Entry(_crypto("random"),
                    "N random bytes from the server's CSPRNG (base64 by default)."),
    "operator": Entry(_operator, "Initialize, unseal and seal the service."),
    "key": Entry(_keys, "Create, inspect and manage keys."),
    "token": Entry(_tokens, "Create, inspect and revoke API tokens."),
    "access-key": Entry(_access_keys, "AWS-style access keys for the KMS API (SigV4)."),
    "policy": Entry(_policies, "Write, read, list and delete policies."),
    "audit": Entry(_audit, "Read and verify the audit log."),
    "approval": Entry(_approvals, "List, show, approve and reject dual-control requests."),
    "custodian": Entry(_custodians,
                       "Custodians: your key, your sealed share, drills, the quorum margin."),
    "share": Entry(_share, "Check an unseal share offline."),
    "file": Entry(_files,
                  "Encrypt and decrypt files and pipes of any size (envelope encryption)."),
    "report": Entry(_reports, "Inventory and compliance reports."),
}


def load_command(name: str) -> Command:
    """Build the click command for a top-level name (imports its module)."""
    target = COMMANDS[name].load()
    if isinstance(target, typer.Typer):
        return plain_group(target, name)
    return plain_command(target, name)


class KeyquorumGroup(TyperGroup):
    """Loads commands on demand; SDK and usage errors become one ``error: ...`` line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_params(self)  # the global options, like every command's

    def get_help_option(self, ctx: Context) -> Any:
        return plain_help_option(super().get_help_option(ctx))

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        plain_params(self)  # and the completion options Typer appends after __init__
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = load_command(cmd_name)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The command list from ``COMMANDS``: ``--help`` imports no command module."""
        rows = [(name, entry.help) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            from ._errors import one_line  # ssl and the rest only when something failed

            reported = one_line(exc)
            if reported is None:
                raise
            line, status = reported
            typer.echo(line, err=True)
            raise typer.Exit(status) from None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        """Click's standalone handling, but a usage error is one line like every other error."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args,
                                **extra)
        from typer import Abort
        from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

        try:
            result = super().main(args, prog_name, complete_var, False, windows_expand_args,
                                  **extra)
        except NoArgsIsHelpError as exc:  # `keyquorum key` alone: the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "keyquorum"
            typer.echo(f"error: usage: {exc.format_message()} (see `{where} --help`)",
                       err=True)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            typer.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    name="keyquorum",
    cls=KeyquorumGroup,
    help="keyquorum: a self-hosted key management service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"keyquorum {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    addr: Annotated[str | None, typer.Option(
        "--addr", envvar="KEYQUORUM_ADDR", show_envvar=True, metavar="URL",
        help="Server address (default http://127.0.0.1:8200).")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="KEYQUORUM_TOKEN", show_envvar=True, show_default=False,
        metavar="TOKEN",
        help="API token (prefer the environment variable: options show in `ps`). Without "
             "either, the token stored by `keyquorum login` or `keyquorum dev` is used.")
    ] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Machine-readable JSON on stdout.")] = False,
    ca_cert: Annotated[str | None, typer.Option(
        "--ca-cert", envvar="KEYQUORUM_CACERT", metavar="PATH",
        help="CA bundle to verify the server's TLS.")] = None,
    tls_skip_verify: Annotated[bool, typer.Option(
        "--tls-skip-verify", help="DANGER: do not verify the server's TLS certificate.")
    ] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """keyquorum: a self-hosted key management service."""
    obj = CliState.from_options(addr, token, json_output, ca_cert, tls_skip_verify)
    ctx.obj = obj
    ctx.call_on_close(obj.close)
