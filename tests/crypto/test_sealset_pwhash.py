"""Argon2id through libsodium: deterministic under stored parameters, bounds checked."""

from __future__ import annotations

import pytest

from keyquorum.crypto.pwhash import Argon2Params, argon2id_key

SALT = bytes(range(16))
CHEAP = {"opslimit": 1, "memlimit": 65536}


def test_same_passphrase_and_parameters_give_the_same_key() -> None:
    params = Argon2Params(SALT, **CHEAP)
    key = argon2id_key(b"a passphrase", params)
    assert len(key) == 32 and key == argon2id_key(b"a passphrase", params)
    assert key != argon2id_key(b"a passphrasf", params)
    assert key != argon2id_key(b"a passphrase", Argon2Params(bytes(16), **CHEAP))
    assert key != argon2id_key(b"a passphrase", Argon2Params(SALT, opslimit=2, memlimit=65536))


@pytest.mark.parametrize("kwargs", [
    {"salt": b"short"}, {"salt": SALT, "opslimit": 0}, {"salt": SALT, "memlimit": 1024},
    {"salt": SALT, "opslimit": 1000},
])
def test_parameters_out_of_bounds_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Argon2Params(**kwargs)
