"""Overwriting secrets in memory once they are no longer needed (security review F10).

Python frees an object's memory without clearing it: a root key or a share that
was only dropped stays readable in the process (a core dump, ``/proc/PID/mem``,
swap) until the allocator happens to hand those bytes out again. So the secrets
keyquorum holds itself live in ``bytearray``s, which ``wipe`` overwrites in place
the moment they are no longer needed: on seal, after combining shares, after
unwrapping.

Some secrets arrive as immutable ``bytes`` made by code keyquorum does not own
(an HTTP request body, the output of a library call that cannot write into a
buffer), and some must be handed out as ``str`` (the shares and root token that
init answers). ``unsafe_wipe_bytes`` and ``unsafe_wipe_str`` overwrite such an
object in place, which Python does not allow: it is safe only for an object this
code made or received and nothing else refers to, and it is CPython's layout that
makes it work (elsewhere they do nothing). They are never for objects that may be
shared (a literal, a dictionary key, an interned or cached value): those would
change under their other holders.

What none of this reaches: copies a library makes inside itself (the transport's
read buffer, the HTTP parser's, OpenSSL's and libsodium's stack), and objects
freed before keyquorum sees them. docs/SECURITY.md lists what a memory scan still
finds after seal.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["unsafe_wipe_bytes", "unsafe_wipe_str", "wipe"]

_CPYTHON = sys.implementation.name == "cpython"
# Where a bytes object's characters start: its fixed header (CPython: refcount, type,
# size, cached hash); ``sys.getsizeof(b"")`` is that header plus the trailing NUL.
_BYTES_DATA = sys.getsizeof(b"") - 1
# The same for a compact ASCII str (every str a JSON parser or an f-string makes of
# ASCII text): its characters follow its fixed header.
_ASCII_DATA = sys.getsizeof("") - 1


def wipe(buffer: bytearray | memoryview | None) -> None:
    """Overwrite a writable buffer with zeros, in place (nothing for None or empty)."""
    if buffer is None:
        return
    size = len(buffer) if isinstance(buffer, bytearray) else buffer.nbytes
    if size:
        view = (ctypes.c_char * size).from_buffer(buffer)
        ctypes.memset(view, 0, size)
        del view  # release the export, so the bytearray may be resized or freed


def unsafe_wipe_bytes(data: bytes) -> None:
    """DANGER: overwrite an immutable ``bytes`` object with zeros, in place.

    Only for an object nothing else refers to (see the module docstring). Objects of
    fewer than two bytes are shared by the interpreter and are left alone, as are
    subclasses of ``bytes``; on interpreters other than CPython this does nothing.
    """
    if not _CPYTHON or type(data) is not bytes or len(data) < 2:
        return
    ctypes.memset(id(data) + _BYTES_DATA, 0, len(data))


def unsafe_wipe_str(text: str) -> None:
    """DANGER: overwrite an ASCII ``str`` with NUL characters, in place.

    Only for a string nothing else refers to and that was never a dictionary key (its
    cached hash would no longer match): a share or token text made for one answer.
    Anything but a compact ASCII string of two or more characters (whose characters
    sit right after the header) is left alone, as on interpreters other than CPython.
    """
    if (not _CPYTHON or type(text) is not str or len(text) < 2 or not text.isascii()
            or sys.getsizeof(text) != _ASCII_DATA + 1 + len(text)):
        return
    ctypes.memset(id(text) + _ASCII_DATA, 0, len(text))
