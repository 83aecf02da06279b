"""The per-user token file: where ``keyquorum login`` and ``keyquorum dev`` leave a token.

Like ``~/.vault-token``: the command line on the same machine finds its token
without the user copying it by hand. The order the CLI follows is ``--token``,
then ``$KEYQUORUM_TOKEN``, then this file. The file is
``$KEYQUORUM_TOKEN_FILE`` when that is set, otherwise ``~/.keyquorum-token``.

The file holds a secret, so it is created 0600 (and replaced atomically, so a
reader never sees half a token), and a file that others may read is refused
rather than used: like ssh with a private key, a token left readable is more
likely a mistake than a choice. Nothing here prints or logs the token.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

TOKEN_FILE_ENV = "KEYQUORUM_TOKEN_FILE"  # noqa: S105 - a variable name, not a secret
DEFAULT_NAME = ".keyquorum-token"


class TokenFileError(Exception):
    """The token file exists but may not be used; the message says why and what to do."""


def token_path() -> Path:
    """Where the token file is (it may not exist)."""
    override = os.environ.get(TOKEN_FILE_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / DEFAULT_NAME


def read_token(path: Path | None = None) -> str | None:
    """The stored token, or ``None`` when there is no file (or it is empty)."""
    path = path or token_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TokenFileError(f"cannot read the token file {path}: {exc.strerror}") from None
    with os.fdopen(fd) as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise TokenFileError(f"the token file {path} is not a regular file")
        if mode & 0o077:
            raise TokenFileError(
                f"the token file {path} may be read by others (mode {stat.S_IMODE(mode):04o}); "
                f"run `chmod 600 {path}` or `keyquorum login` again")
        token = handle.read().strip()
    return token or None


def write_token(token: str, path: Path | None = None) -> Path:
    """Store ``token`` (0600, atomically replacing any earlier one); returns the path."""
    path = path or token_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def remove_token(path: Path | None = None) -> bool:
    """Delete the token file; ``False`` when there was none."""
    path = path or token_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
