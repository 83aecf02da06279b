"""Bring your own key: Vault's wrapping key, import and import_version.

The wrapping is done here as a Vault client does it (RSA-OAEP-SHA256 of an
ephemeral AES-256 key, then AES-KWP of the key), and once with ``bao transit
import``; an imported key proves itself by opening what it encrypted locally.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from inprocess_server import InProcessServer
from transit_support import Vault, b64, errors


@pytest.fixture(scope="module")
def root(shared_inprocess: InProcessServer) -> Iterator[Vault]:
    with shared_inprocess.anonymous() as http:
        yield Vault(http, shared_inprocess.root_token)


def _wrap(vault: Vault, key: bytes) -> str:
    pem = vault.data(vault.request("GET", "wrapping_key"))["public_key"]
    public = serialization.load_pem_public_key(pem.encode())
    ephemeral = os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                        label=None)
    wrapped = public.encrypt(ephemeral, oaep)  # type: ignore[union-attr]
    return b64(wrapped + aes_key_wrap_with_padding(ephemeral, key))


def test_the_wrapping_key_is_one_rsa_4096_key(root: Vault) -> None:
    first = root.data(root.request("GET", "wrapping_key"))["public_key"]
    assert root.data(root.request("GET", "wrapping_key"))["public_key"] == first
    assert serialization.load_pem_public_key(first.encode()).key_size == 4096  # type: ignore[union-attr]


def test_an_imported_hmac_key_computes_the_tags_of_its_material(root: Vault) -> None:
    import hmac as hmac_module

    material = os.urandom(32)
    made = root.data(root.write("keys/byok-mac/import", {
        "ciphertext": _wrap(root, material), "type": "hmac", "hash_function": "SHA256"}))
    assert made["imported_key"] is True
    tag = root.data(root.write("hmac/byok-mac", {"input": b64(b"m")}))["hmac"]
    expected = hmac_module.new(material, b"m", "sha256").digest()
    assert tag == f"vault:v1:{b64(expected)}"
    newer = os.urandom(32)
    assert root.data(root.write("keys/byok-mac/import_version", {
        "ciphertext": _wrap(root, newer)}))["latest_version"] == 2
    tag = root.data(root.write("hmac/byok-mac", {"input": b64(b"m")}))["hmac"]
    assert tag == f"vault:v2:{b64(hmac_module.new(newer, b'm', 'sha256').digest())}"


def test_an_imported_ecdsa_key_signs_for_its_public_key(root: Vault) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    root.data(root.write("keys/byok-ec/import", {"ciphertext": _wrap(root, der),
                                                 "type": "ecdsa-p256"}))
    signature = root.data(root.write("sign/byok-ec", {"input": b64(b"msg")}))["signature"]
    der_signature = base64.b64decode(signature.split(":", 2)[2])
    private.public_key().verify(der_signature, b"msg", ec.ECDSA(hashes.SHA256()))


def test_bad_imports_are_refused_and_nothing_is_made(
        shared_inprocess: InProcessServer, root: Vault) -> None:
    assert errors(root.write("keys/byok-bad/import", {"ciphertext": b64(b"x" * 600)}), 400)
    short = _wrap(root, os.urandom(16))  # an aes256-gcm96 key is 32 bytes
    assert errors(root.write("keys/byok-bad/import", {"ciphertext": short}), 400)
    root.write("keys/generated")
    assert errors(root.write("keys/generated/import_version",
                             {"ciphertext": _wrap(root, os.urandom(32))}), 400)
    with shared_inprocess.client() as http:
        assert http.get("/v1/keys/byok-bad").status_code == 404


BAO = shutil.which("bao") or str(Path(sys.executable).parent / "bao")


@pytest.mark.server
@pytest.mark.skipif(not Path(BAO).exists(), reason="the bao binary is not installed")
def test_bao_transit_import(shared_server: object) -> None:
    server = shared_server
    key = os.urandom(32)
    env = {**os.environ, "BAO_ADDR": server.addr,  # type: ignore[attr-defined]
           "BAO_TOKEN": server.root_token, "HOME": str(server.data_dir.parent)}  # type: ignore[attr-defined]
    done = subprocess.run([BAO, "transit", "import", "transit/keys/byok-cli", b64(key),
                           "type=aes256-gcm96"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    with server.anonymous() as http:  # type: ignore[attr-defined]
        vault = Vault(http, server.root_token)  # type: ignore[attr-defined]
        assert vault.data(vault.request("GET", "keys/byok-cli"))["imported_key"] is True
