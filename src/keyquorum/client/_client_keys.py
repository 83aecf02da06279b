"""``Client``'s key lifecycle calls, as a base class of it: create, list, change,
rotate, disable, revoke and destroy keys, and read their public halves.

``_async_client_keys.py`` is generated from this file by ``scripts/gen-async``, as
``_async_client.py`` is from ``_client.py``: edit here, then run it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

from . import _protocol as api
from ._protocol import Call, Duration

if TYPE_CHECKING:
    from ._models import DeletionScheduled, Key, KeyPage, PublicKey

T = TypeVar("T")


class KeyMethods:
    """A key's life: created, listed, changed, rotated, disabled, revoked, destroyed."""

    def _run(self, call: Call[T]) -> T:
        """Send ``call`` and read its answer (``Client`` does)."""
        raise NotImplementedError

    # --- keys -----------------------------------------------------------------

    def create_key(self, name: str, spec: str, *, purpose: str | None = None,
                   description: str | None = None, owner: str | None = None,
                   labels: Mapping[str, str] | None = None, exportable: bool | None = None,
                   rotation_period: Duration | None = None, usage_limit: int | None = None,
                   deletion_window_days: int | None = None,
                   crypto_period: Duration | None = None) -> Key:
        """Create a key; ``crypto_period`` overrides the spec's NIST SP 800-57 default."""
        return self._run(api.create_key(
            name, spec, purpose=purpose, description=description, owner=owner, labels=labels,
            exportable=exportable, rotation_period=rotation_period, usage_limit=usage_limit,
            deletion_window_days=deletion_window_days, crypto_period=crypto_period))

    def list_keys(self, *, prefix: str | None = None, state: str | None = None,
                  spec: str | None = None, owner: str | None = None,
                  labels: Mapping[str, str] | None = None, limit: int | None = None,
                  page_token: str | None = None) -> KeyPage:
        """One page of keys; see ``iter_keys`` for all of them."""
        return self._run(api.list_keys(prefix=prefix, state=state, spec=spec, owner=owner,
                                       labels=labels, limit=limit, page_token=page_token))

    def iter_keys(self, *, prefix: str | None = None, state: str | None = None,
                  spec: str | None = None, owner: str | None = None,
                  labels: Mapping[str, str] | None = None,
                  page_size: int | None = None) -> Iterator[Key]:
        """Every key matching the filters, fetching pages as needed."""
        token: str | None = None
        while True:
            page = self.list_keys(prefix=prefix, state=state, spec=spec, owner=owner,
                                  labels=labels, limit=page_size, page_token=token)
            yield from page.keys
            if not page.next_page_token:
                return
            token = page.next_page_token

    def get_key(self, name: str) -> Key:
        return self._run(api.get_key(name))

    def update_key(self, name: str, *, description: str | None = None,
                   owner: str | None = None, labels: Mapping[str, str] | None = None,
                   rotation_period: Duration | None = None, usage_limit: int | None = None,
                   min_decrypt_version: int | None = None,
                   crypto_period: Duration | None = None) -> Key:
        """Change the given metadata fields; fields left ``None`` are unchanged."""
        return self._run(api.update_key(
            name, description=description, owner=owner, labels=labels,
            rotation_period=rotation_period, usage_limit=usage_limit,
            min_decrypt_version=min_decrypt_version, crypto_period=crypto_period))

    def rotate_key(self, name: str) -> Key:
        """Make a new primary version; older versions still decrypt and verify."""
        return self._run(api.rotate_key(name))

    def disable_key(self, name: str, version: int | None = None) -> Key:
        """Disable the whole key, or suspend one version (reversible)."""
        return self._run(api.disable_key(name, version))

    def enable_key(self, name: str, version: int | None = None) -> Key:
        return self._run(api.enable_key(name, version))

    def revoke_key(self, name: str, reason: str, *, version: int | None = None,
                   note: str | None = None, approval_id: str | None = None) -> Key:
        """Revoke a version (default: the primary), e.g. ``reason="compromised"``."""
        return self._run(api.revoke_key(name, reason, version=version, note=note,
                                        approval_id=approval_id))

    def schedule_deletion(self, name: str, days: int | None = None, *,
                          approval_id: str | None = None) -> DeletionScheduled:
        """Schedule the key's destruction in ``days`` (7-30; default its window)."""
        return self._run(api.schedule_deletion(name, days, approval_id=approval_id))

    def cancel_deletion(self, name: str) -> Key:
        return self._run(api.cancel_deletion(name))

    def public_key(self, name: str, version: int | None = None) -> PublicKey:
        return self._run(api.public_key(name, version))
