from __future__ import annotations

from typing import Any


def test_encrypt_decrypt(kms: Any) -> None:
    made = kms.create_key(Description="hello")
    key_id = made["KeyMetadata"]["KeyId"]
    sealed = kms.encrypt(KeyId=key_id, Plaintext=b"secret", EncryptionContext={"a": "b"})
    opened = kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert opened["Plaintext"] == b"secret"
