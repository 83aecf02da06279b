"""Transit encrypt/decrypt on RSA encryption keys (native purpose encrypt): Vault's
RSA-OAEP with SHA-256, ``vault:v<N>:<base64 block>``, a client's own OAEP block
decrypts, batches, and the refusals (associated_data, a signing RSA key)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from http_helpers import create_key, ok, unique
from inprocess_server import InProcessServer
from transit_support import Vault, b64, errors

SHA256_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                           label=None)


@pytest.fixture(scope="module")
def native(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


@pytest.fixture(scope="module")
def root(shared_inprocess: InProcessServer) -> Iterator[Vault]:
    with shared_inprocess.anonymous() as http:
        yield Vault(http, shared_inprocess.root_token)


@pytest.fixture(scope="module")
def rsa_enc(native: httpx.Client) -> str:
    name = unique("transit-rsa")
    create_key(native, name, "rsa-2048", purpose="encrypt")
    return name


def test_key_reads_as_an_encryption_key(root: Vault, rsa_enc: str) -> None:
    data = root.data(root.request("GET", f"keys/{rsa_enc}"))
    assert (data["supports_encryption"], data["supports_decryption"],
            data["supports_signing"]) == (True, True, False)


def test_encrypt_decrypt_and_a_clients_own_block(root: Vault, native: httpx.Client,
                                                 rsa_enc: str) -> None:
    made = root.data(root.write(f"encrypt/{rsa_enc}", {"plaintext": b64(b"hello")}))
    assert made["ciphertext"].startswith("vault:v1:") and made["key_version"] == 1
    opened = root.data(root.write(f"decrypt/{rsa_enc}", {"ciphertext": made["ciphertext"]}))
    assert opened["plaintext"] == b64(b"hello")
    pem = ok(native.get(f"/v1/keys/{rsa_enc}/public-key"))["public_key_pem"]
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    block = public.encrypt(b"from a client", SHA256_OAEP)
    opened = root.data(root.write(f"decrypt/{rsa_enc}", {"ciphertext": f"vault:v1:{b64(block)}"}))
    assert opened["plaintext"] == b64(b"from a client")


def test_batches_and_refusals(root: Vault, native: httpx.Client, rsa_enc: str) -> None:
    answer = root.write(f"encrypt/{rsa_enc}", {"batch_input": [
        {"plaintext": b64(b"a"), "reference": "1"},
        {"plaintext": b64(b"b"), "associated_data": b64(b"x"), "reference": "2"}]})
    assert answer.status_code == 400
    results = answer.json()["data"]["batch_results"]
    assert results[0]["ciphertext"].startswith("vault:v1:")
    assert "associated_data is not supported" in results[1]["error"]
    decrypted = root.write(f"decrypt/{rsa_enc}", {"batch_input": [
        {"ciphertext": results[0]["ciphertext"]}, {"ciphertext": "vault:v1:AAAA"},
        {"ciphertext": "nonsense"}]})
    assert decrypted.status_code == 400
    out = decrypted.json()["data"]["batch_results"]
    assert out[0]["plaintext"] == b64(b"a")
    assert "error" in out[1] and "error" in out[2]
    assert errors(root.write(f"decrypt/{rsa_enc}", {"ciphertext": "vault:v1:AAAA"}), 400)
    signing = unique("transit-rsa-sign")
    create_key(native, signing, "rsa-2048")
    refused = errors(root.write(f"encrypt/{signing}", {"plaintext": b64(b"x")}), 400)
    assert any("RSA encryption key" in e or "purpose" in e for e in refused), refused
