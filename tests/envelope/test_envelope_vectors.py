"""The stream vectors (tests/vectors/stream.json), checked with pyca/cryptography alone.

The first test parses each stream by hand from docs/FORMAT.md section 5, unwraps
the data key from its ``kq1:`` copy with the key-encryption key, derives the
segment key and commitment with HKDF, and opens every segment with AESGCM: no
keyquorum code is involved (the imports below serve the second test only), so
a bug in the encoder cannot hide behind the same bug in the decoder. The second
checks the encoder still writes the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyquorum.envelope._format import WrappedKey
from keyquorum.envelope._keys import NewDataKey
from keyquorum.envelope._stream import seal_stream

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "stream.json")
                     .read_text("utf-8"))["vectors"]


def context_bytes(context: dict[str, str]) -> bytes:
    """docs/FORMAT.md section 2, written out again here on purpose."""
    items = sorted((k.encode(), v.encode()) for k, v in context.items())
    out = struct.pack(">H", len(items))
    for k, v in items:
        out += struct.pack(">H", len(k)) + k + struct.pack(">I", len(v)) + v
    return out


def unwrap(text: str, kek: bytes, key_id: str, context: dict[str, str]) -> bytes:
    """Open a ``kq1:`` ciphertext (FORMAT.md section 1) with its key-encryption key."""
    raw = base64.urlsafe_b64decode(text[4:] + "=" * (-len(text[4:]) % 4))
    header, body = raw[:36], raw[36:]
    assert header[:4] == b"KQ\x01\x01" and uuid.UUID(bytes=header[4:20]) == uuid.UUID(key_id)
    return AESGCM(kek).decrypt(header[24:36], body, header + context_bytes(context))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_decrypts_by_the_specification_alone(vector: dict) -> None:
    stream = bytes.fromhex(vector["stream_hex"])
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        pos += n
        assert pos <= len(stream)
        return stream[pos - n:pos]

    magic, version, algorithm, segment_size, context_size = struct.unpack(">4sBBII", take(14))
    assert (magic, version, algorithm, segment_size) == (b"KQST", 1, 1, vector["segment_size"])
    assert take(context_size) == context_bytes(vector["context"])
    data_keys = set()
    (count,) = take(1)
    assert count == len(vector["wrapped_keys"])
    for wrapped in vector["wrapped_keys"]:
        name = take(take(1)[0]).decode()
        (text_size,) = struct.unpack(">H", take(2))
        text = take(text_size).decode("ascii")
        assert (name, text) == (wrapped["key"], wrapped["ciphertext"])
        kek = vector["key_encryption_keys"][name]
        data_keys.add(unwrap(text, bytes.fromhex(kek["key_hex"]), kek["key_id"],
                             vector["context"]))
    assert data_keys == {bytes.fromhex(vector["data_key_hex"])}  # every copy: the same key
    data_key = data_keys.pop()
    salt, prefix = take(32), take(7)
    header_prefix = stream[:pos]
    commitment = take(32)
    okm = HKDF(hashes.SHA256(), 64, salt,
               b"keyquorum stream v1" + hashlib.sha256(header_prefix).digest()).derive(data_key)
    assert okm[32:] == commitment
    aad = hashlib.sha256(stream[:pos]).digest()
    assert aad.hex() == vector["aad_hex"]

    cipher, plaintext, index = AESGCM(okm[:32]), b"", 0
    while pos < len(stream):
        sealed = take(min(segment_size + 16, len(stream) - pos))
        last = pos == len(stream)
        nonce = prefix + struct.pack(">IB", index, 1 if last else 0)
        assert nonce.hex() == vector["segments"][index]["nonce_hex"]
        plaintext += cipher.decrypt(nonce, sealed, aad)
        index += 1
    assert index == len(vector["segments"]) >= 1
    assert plaintext.hex() == vector["plaintext_hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_the_encoder_writes_the_vector_byte_for_byte(vector: dict) -> None:
    out = io.BytesIO()
    wrapped = [WrappedKey(w["key"], w["ciphertext"]) for w in vector["wrapped_keys"]]
    seal_stream(io.BytesIO(bytes.fromhex(vector["plaintext_hex"])), out,
                NewDataKey(bytes.fromhex(vector["data_key_hex"]), wrapped),
                bytes.fromhex(vector["context_hex"]), vector["segment_size"],
                salt=bytes.fromhex(vector["salt_hex"]),
                nonce_prefix=bytes.fromhex(vector["nonce_prefix_hex"]))
    assert out.getvalue().hex() == vector["stream_hex"]
