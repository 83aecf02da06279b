"""Build click commands from the CLI's Typer apps, with help a person can read at 80 columns.

Two choices made here for every command:

- Plain help (Typer's ``rich_markup_mode=None``), not Rich panels. The panels cut
  long option names at 80 columns (``--deletion-window-d…``), wrap everything in
  boxes, and cost a tenth of a second of imports on every ``--help``.
- Text parameters (``str``, ``str | None``, ``list[str]``) are taken as the strings
  the shell gave, without Typer's Pydantic adapter: building it imports Pydantic,
  a twentieth of a second on every call of a command that only passes strings on
  (``keyquorum encrypt``). Numbers, paths and choices keep Typer's checks.
- Metavars in the classic style (``--spec TEXT``, ``KEY``) instead of Typer's type
  labels (``<str>``, ``<list[str]>``, ``<int range>``, ``{name}``), which read like
  code. Flags show no metavar at all. A metavar given in the code wins.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

if TYPE_CHECKING:
    from typer._click import Command, Context

_NAMES: dict[Any, str] = {str: "TEXT", int: "INTEGER", float: "NUMBER", Path: "PATH"}


def _label(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is list or origin is tuple:
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return _label(args[0]) if args else "VALUE"
    args = [a for a in get_args(annotation) if a is not type(None)]
    if args and origin is not None:  # X | None
        return _label(args[0])
    return _NAMES.get(annotation, "VALUE")


@cache
def _text_coercion() -> type | None:
    """A Typer runtime coercion that keeps the shell's strings (and flags' booleans)."""
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
    except ImportError:  # another Typer: let it coerce as it does
        return None

    class Text(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, str) or (self.annotation is bool and isinstance(value, bool)):
                return value
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return list(value)
            # anything else (a flag from an environment variable...): Typer's own way
            return build_runtime_param(param.type_descriptor)._coerce_value(value, param, ctx)

    return Text


def _text_param(param: TyperOption | TyperArgument) -> Any | None:
    """The fast coercion for a plain text or flag parameter; ``None`` for any other."""
    descriptor = param.type_descriptor
    info = descriptor.parameter_info
    text = _text_coercion()
    if text is None or descriptor.annotation not in (str, bool, list[str]) or \
            info.parser is not None or descriptor.file_annotation is not None:
        return None
    return text(parameter_info=info, annotation=descriptor.annotation)


class PlainOption(TyperOption):
    """An option whose help shows ``--name TEXT``, never ``<str>`` or ``<list[str]>``."""

    def get_runtime_param(self) -> Any:
        if self._runtime_param is None:
            self._runtime_param = _text_param(self)
        return super().get_runtime_param()

    def display_type_rich(self, ctx: Context) -> str | None:
        if self.metavar is not None:
            return self.metavar
        descriptor = self.type_descriptor
        if descriptor.is_choice:
            return "[" + "|".join(str(c) for c in descriptor.choices or ()) + "]"
        return _label(descriptor.annotation)


class PlainArgument(TyperArgument):
    """An argument shown as ``NAME`` (``[NAME]`` when optional), without a type label."""

    def get_runtime_param(self) -> Any:
        if self._runtime_param is None:
            self._runtime_param = _text_param(self)
        return super().get_runtime_param()

    def display_type_rich(self, ctx: Context) -> str | None:
        return None

    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def get_usage_pieces(self, ctx: Context) -> list[str]:
        name = self.display_name_raw
        name = name if self.required else f"[{name}]"
        return [name + ("..." if self.nargs != 1 else "")]


def plain_help_option(option: Any) -> Any:
    if type(option) is TyperOption:
        option.__class__ = PlainOption
    return option


class PlainCommand(TyperCommand):
    """A command whose ``--help`` option takes the fast path too (Typer makes it late)."""

    def get_help_option(self, ctx: Context) -> Any:
        return plain_help_option(super().get_help_option(ctx))


class PlainGroup(TyperGroup):
    def get_help_option(self, ctx: Context) -> Any:
        return plain_help_option(super().get_help_option(ctx))


def plain_params(command: Command) -> None:
    """Give the parameters of ``command`` itself the classic look and the text fast path."""
    for param in command.params:
        # Same fields, other methods: the subclasses add no state.
        if type(param) is TyperOption:
            param.__class__ = PlainOption
        elif type(param) is TyperArgument:
            param.__class__ = PlainArgument


def plain(command: Command) -> Command:
    """``plain_params`` for ``command`` and every subcommand under it."""
    if type(command) is TyperCommand:
        command.__class__ = PlainCommand
    elif type(command) is TyperGroup:
        command.__class__ = PlainGroup
    plain_params(command)
    for sub in getattr(command, "commands", {}).values():
        plain(sub)
    return command


def plain_group(app: typer.Typer, name: str) -> Command:
    group = get_group_from_info(TyperInfo(app, name=name), pretty_exceptions_short=True,
                                rich_markup_mode=None, suggest_commands=True)
    return plain(group)


def plain_command(callback: Callable[..., Any], name: str) -> Command:
    command = get_command_from_info(CommandInfo(name=name, callback=callback),
                                    pretty_exceptions_short=True, rich_markup_mode=None)
    return plain(command)
