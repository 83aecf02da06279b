"""``keyquorum login``, ``logout`` and ``status``: who this shell is, and the server at a glance.

``login`` checks a token with the server (``/v1/auth/tokens/self``) before it
stores it in the per-user token file (``keyquorum.token_file``), so a typo is
caught now rather than at the next command. ``status`` puts on one screen what
an operator checks first: is it up and unsealed, which node and version, how
many custodian shares are to spare, and which identity this shell speaks as.
Each part that the token may not see says so instead of failing the whole
command.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ._common import client, console, emit, err_console, fields_table, state, stdin_is_tty


def login(
    ctx: typer.Context,
    token: Annotated[str | None, typer.Argument(
        help="The token; omit to type it hidden, or pipe it on stdin.", show_default=False)
    ] = None,
) -> None:
    """Store a token for this user's later commands (kept 0600, like Vault's)."""
    from ..token_file import token_path, write_token

    if token is None:
        token = (typer.prompt("Token", hide_input=True) if stdin_is_tty()
                 else typer.get_text_stream("stdin").readline())
    token = token.strip()
    if not token:
        raise typer.BadParameter("no token given")
    cli = state(ctx)
    cli.token = token  # check this token, not the one from the environment
    info = client(ctx).token_self()
    path = write_token(token, token_path())

    def human() -> None:
        who = f"{info.name} ({info.accessor})" if info.name else info.accessor
        console().print(f"logged in as {who}; policies {', '.join(info.policies) or '-'}; "
                        f"token stored in {path} (mode 0600)", markup=False, highlight=False)
        if os.environ.get("KEYQUORUM_TOKEN"):
            err_console().print("note: KEYQUORUM_TOKEN is set in this shell and takes "
                                "precedence over the stored token", markup=False)

    emit(ctx, {"accessor": info.accessor, "name": info.name, "policies": info.policies,
               "expires_at": info.expires_at, "token_file": str(path)}, human)


def logout(ctx: typer.Context) -> None:
    """Forget the stored token (the token itself stays valid: `token revoke` ends it)."""
    from ..token_file import remove_token, token_path

    path = token_path()
    removed = remove_token(path)
    emit(ctx, {"token_file": str(path), "removed": removed}, lambda: console().print(
        f"removed {path}" if removed else f"no stored token ({path})", markup=False))


def _part(call: Callable[[], Any]) -> tuple[Any, str | None]:
    """The answer of ``call``, or ``(None, "code: message")`` when the server refused."""
    from ..client import KeyquorumAPIError

    try:
        return call(), None
    except KeyquorumAPIError as exc:
        return None, f"{exc.code}: {exc.message}"


def status(ctx: typer.Context) -> None:
    """Seal state, node, quorum margin and who you are, on one screen."""
    kq = client(ctx)
    health = kq.health()  # a connection error ends here, with the usual one line
    seal, seal_error = _part(kq.seal_status)
    has_token = bool(state(ctx).resolved_token())
    who, who_error = _part(kq.token_self) if has_token else (
        None, "no token (keyquorum login, or KEYQUORUM_TOKEN)")
    quorum, quorum_error = (_part(kq.custodian_status) if health.initialized and who else
                            (None, "needs an unsealed server and a token"))
    answer = {
        "addr": kq.addr, "health": health, "seal": seal, "identity": who, "quorum": quorum,
        "errors": {k: v for k, v in (("seal", seal_error), ("identity", who_error),
                                     ("quorum", quorum_error)) if v},
    }

    def human() -> None:
        if not health.initialized:
            state_text = "not initialized: run `keyquorum operator init`"
        elif health.sealed:
            progress = f" (unseal progress {seal.progress}/{seal.threshold})" if seal else ""
            state_text = f"SEALED{progress}: custodians run `keyquorum operator unseal`"
        else:
            state_text = "unsealed"
        rows: list[tuple[str, Any]] = [
            ("server", kq.addr), ("state", state_text),
            ("node", health.node), ("version", health.version),
        ]
        if seal is not None:
            rows.append(("seal", f"{seal.threshold} of {seal.shares} shares; seals: "
                         + ", ".join(str(s.get("type", s)) if isinstance(s, dict) else str(s)
                                     for s in seal.seals)))
        if quorum is not None:
            margin = (f"{quorum.margin}: {quorum.verified} share(s) shown in the last "
                      f"{quorum.drill_window_days} days, {quorum.threshold} needed")
            rows.append(("quorum margin", margin + (f" ({quorum.warning})"
                                                    if quorum.warning else "")))
            if quorum.unacknowledged:  # their shares do not count until they prove them
                rows.append(("not acknowledged", ", ".join(quorum.unacknowledged)))
        else:
            rows.append(("quorum margin", f"not visible ({quorum_error})"))
        if who is not None:
            rows.append(("you", f"{who.name} ({who.accessor})" if who.name else who.accessor))
            rows.append(("policies", who.policies))
            rows.append(("token expires", who.expires_at or "never"))
        else:
            rows.append(("you", f"unknown ({who_error})"))
        fields_table(rows, title="keyquorum status")

    emit(ctx, answer, human)
    if not health.initialized or health.sealed:
        raise typer.Exit(2)  # scripts can wait on `keyquorum status` like `vault status`


COMMANDS: dict[str, Callable[..., Any]] = {"login": login, "logout": logout, "status": status}
"""The top-level commands of this module, by name (``keyquorum.cli.tree`` loads them)."""
