"""A plain ``keyquorum encrypt`` or ``decrypt``, answered without Typer.

A shell loop calling ``keyquorum encrypt`` pays the CLI's start-up every time,
and Typer (its import, and the command it builds from annotations) was a fifth
of one call (``bench/cli.py``). ``run`` answers the forms such a loop uses::

    keyquorum [--json] [--tls-skip-verify] [--addr URL] [--token T] [--ca-cert PATH]
        encrypt KEY [FILE | -] [--context | -c K=V]...
        decrypt [FILE | -] [--context | -c K=V]... [--key KEY]

through the same state (``_core.CliState``), SDK call, output and error lines
(``_errors.one_line``) as the commands in ``keyquorum.cli.crypto``, and answers
``None`` for anything else: another command or option, ``--help``, ``--``, a
malformed pair, a file it cannot read, a token file that may not be used.
``keyquorum.cli.main`` then runs the Typer tree, which shows the help or the
error exactly as it always did; nothing has been sent by then, and the one input
read before a refusal (a decrypt's stdin that is not text) is handed back. So
this parses only calls that are well formed; every error of usage is still
Typer's. ``tests/cli/test_cli_shortcut.py`` runs each form both ways and
compares what they print.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from ._core import CliState, json_text, split_pair

if TYPE_CHECKING:
    from ..client import Client

_GLOBAL_FLAGS = frozenset({"--json", "--tls-skip-verify"})
_GLOBAL_OPTIONS = {"--addr": "KEYQUORUM_ADDR", "--token": "KEYQUORUM_TOKEN",
                   "--ca-cert": "KEYQUORUM_CACERT"}
"""The global options that take a value, and the variable each falls back to."""


class Form(NamedTuple):
    """What a command accepts on this road: how many arguments, which options."""

    least: int
    most: int
    options: dict[str, str]  # spelling -> option
    repeatable: frozenset[str]


_FORMS = {
    "encrypt": Form(1, 2, {"--context": "context", "-c": "context"}, frozenset({"context"})),
    "decrypt": Form(0, 1, {"--context": "context", "-c": "context", "--key": "key"},
                    frozenset({"context"})),
}


class Invocation(NamedTuple):
    """A call this road answers, as parsed from the command line."""

    command: str
    options: dict[str, str]  # global options given: --addr, --token, --ca-cert
    flags: frozenset[str]
    arguments: list[str]
    values: dict[str, list[str]]  # the command's options


def _value(args: Sequence[str], at: int, spellings: dict[str, str]
           ) -> tuple[str, str, int] | None:
    """The option at ``args[at]`` (``--o V``, ``--o=V`` or ``-o V``), its value, the next index."""
    name, equals, value = args[at].partition("=")
    if equals and name.startswith("--") and name in spellings:
        return spellings[name], value, at + 1
    if args[at] in spellings and at + 1 < len(args) and not args[at + 1].startswith("-"):
        return spellings[args[at]], args[at + 1], at + 2
    return None  # unknown, a value that looks like an option, or none: Typer says which


def parse(argv: Sequence[str]) -> Invocation | None:
    """The call, if it is one of the forms above, well formed; otherwise ``None``."""
    if "--" in argv:
        return None
    at, options, flags = 0, {}, set()
    while at < len(argv) and argv[at].startswith("-"):
        if argv[at] in _GLOBAL_FLAGS:
            flags.add(argv[at])
            at += 1
            continue
        found = _value(argv, at, {name: name for name in _GLOBAL_OPTIONS})
        if found is None or found[0] in options:
            return None
        options[found[0]], at = found[1], found[2]
    if at >= len(argv) or argv[at] not in _FORMS:
        return None
    command, form = argv[at], _FORMS[argv[at]]
    arguments: list[str] = []
    values: dict[str, list[str]] = {}
    at += 1
    while at < len(argv):
        if argv[at] == "-" or not argv[at].startswith("-"):
            arguments.append(argv[at])
            at += 1
            continue
        found = _value(argv, at, form.options)
        if found is None or (found[0] in values and found[0] not in form.repeatable):
            return None
        values.setdefault(found[0], []).append(found[1])
        at = found[2]
    if not form.least <= len(arguments) <= form.most:
        return None
    return Invocation(command, options, frozenset(flags), arguments, values)


def _state(call: Invocation) -> CliState:
    """The global options as Click resolves them: the option, else a non-empty variable."""
    given = {name: call.options.get(name, os.environ.get(variable) or None)
             for name, variable in _GLOBAL_OPTIONS.items()}
    return CliState.from_options(given["--addr"], given["--token"], "--json" in call.flags,
                                 given["--ca-cert"], "--tls-skip-verify" in call.flags)


class _Refused(Exception):
    """The Typer tree must answer: it will print the error (or the help) itself."""


def _context(call: Invocation) -> dict[str, str] | None:
    """The ``--context`` pairs, ``None`` when not given; a malformed one is Typer's to report."""
    pairs: dict[str, str] = {}
    for text in call.values.get("context", []):
        pair = split_pair(text)
        if pair is None:
            raise _Refused
        pairs[pair[0]] = pair[1]
    return pairs or None


def _client(state: CliState) -> Client:
    """The client, made from the options and the token file; nothing is sent yet."""
    try:
        return state.client()
    except Exception as exc:  # a token file it may not use, a CA file it cannot read:
        raise _Refused from exc  # the Typer tree meets it again and reports it


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _input(call: Invocation, position: int) -> bytes | None:
    """The named file's bytes, or ``None`` for stdin (read later, once nothing can refuse)."""
    path = call.arguments[position] if len(call.arguments) > position else None
    if path is None or path == "-":
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        raise _Refused from None


def _encrypt(call: Invocation, kq: Client, json_output: bool,
             context: dict[str, str] | None) -> None:
    data = _input(call, 1)
    plaintext = sys.stdin.buffer.read() if data is None else data
    result = kq.encrypt(call.arguments[0], plaintext, context)
    _print(json_text(result) if json_output else result.ciphertext)


def _decrypt(call: Invocation, kq: Client, json_output: bool,
             context: dict[str, str] | None) -> None:
    data = _input(call, 0)
    if data is None:
        data = sys.stdin.buffer.read()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            # Typer's error for it (`the input must be UTF-8 text`), from the same bytes.
            sys.stdin = io.TextIOWrapper(io.BytesIO(data))
            raise _Refused from None
    try:
        ciphertext = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _Refused from None
    keys = call.values.get("key")
    result = kq.decrypt(ciphertext, context, key=keys[0] if keys else None)
    if json_output:
        _print(json_text(result))
    else:
        sys.stdout.buffer.write(result.plaintext)
        sys.stdout.flush()


def run(argv: Sequence[str]) -> int | None:
    """Answer ``argv`` and give the exit status, or ``None``: the Typer tree must answer."""
    call = parse(argv)
    if call is None:
        return None
    state = _state(call)
    try:
        context = _context(call)
        kq = _client(state)
        command = _encrypt if call.command == "encrypt" else _decrypt
        command(call, kq, state.json, context)
    except _Refused:
        return None
    except KeyboardInterrupt:
        return 130  # as Typer: no traceback, no message
    except BrokenPipeError:  # `keyquorum encrypt k f | head -c 0`: as Typer, exit 1 quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed pipe
        return 1
    except Exception as exc:
        from ._errors import one_line

        reported = one_line(exc)
        if reported is None:
            raise
        sys.stderr.write(reported[0] + "\n")
        return reported[1]
    finally:
        state.close()
    return 0
