"""The auth and audit packages' public face is deliberate: a sorted ``__all__`` of real names.

Sorted the way ruff's RUF022 sorts: constants, then classes, then functions.
"""

from __future__ import annotations

import keyquorum.audit
import keyquorum.auth


def _isort_key(name: str) -> tuple[int, str]:
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_names_are_sorted_and_importable() -> None:
    for package in (keyquorum.auth, keyquorum.audit):
        assert package.__all__ == sorted(package.__all__, key=_isort_key)
        for name in package.__all__:
            assert hasattr(package, name)
