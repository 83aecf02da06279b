"""Sealing overwrites the root key and the barrier keys; init keeps neither (F10).

Each test keeps a reference to a secret's buffer and checks it holds zeros after:
a secret that was only dropped (as before) would still be there.
"""

from __future__ import annotations

from typing import Any

import pytest

import keyquorum.service.core as core_module
from keyquorum.crypto.random import random_buffer

ZERO = bytearray(32)


def test_sealing_overwrites_the_root_key_and_every_barrier_key(core: Any) -> None:
    root = core._root_key
    keys = list(core.barrier().keyring.terms.values())
    assert isinstance(root, bytearray) and root != ZERO
    assert keys and all(key != ZERO for key in keys)
    core.seal()
    assert root == ZERO
    assert all(key == ZERO for key in keys)


def test_a_root_key_handed_out_is_a_copy_a_seal_leaves_alone(core: Any) -> None:
    """A backup streaming while the service seals keeps the key it started with."""
    copy = core.root_key()
    core.seal()
    assert isinstance(copy, bytes) and copy != bytes(32)


def test_init_wipes_the_root_key_it_made_and_unseal_opens_it_again(
        make_core: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[bytearray] = []

    def keep(size: int) -> bytearray:
        made.append(random_buffer(size))
        return made[-1]

    monkeypatch.setattr(core_module, "random_buffer", keep)
    core = make_core(initialized=False)
    answer = core.init(3, 2)
    assert made == [ZERO]  # the root key, once stored under the seal
    share = bytearray(answer["shares"][0].encode())
    assert core.unseal(share).progress == 1
    assert share == bytearray(answer["shares"][0].encode())  # the caller's to wipe
    core.unseal(answer["shares"][1])
    assert not core.sealed and core._root_key != ZERO
