"""hvac, unchanged, against a live keyquorum server: every transit method it offers.

One server process for the module (hvac speaks real HTTP through ``requests``).
Methods keyquorum does not offer (backup, restore) answer Vault's
400 with a message that says so; hvac raises ``InvalidRequest`` for them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from kq_support import ServerProcess

hvac = pytest.importorskip("hvac")
pytestmark = pytest.mark.server


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def vault(shared_server: ServerProcess) -> Iterator[object]:
    client = hvac.Client(url=shared_server.addr, token=shared_server.root_token)
    yield client.secrets.transit
    client.adapter.close()


@pytest.fixture(scope="module")
def client(shared_server: ServerProcess) -> Iterator[object]:
    made = hvac.Client(url=shared_server.addr, token=shared_server.root_token)
    yield made
    made.adapter.close()


def _create(transit: object, name: str, key_type: str) -> None:
    """hvac checks key types against Vault's list (no hmac, no kq-*): post it raw."""
    transit._adapter.post(f"/v1/transit/keys/{name}",  # type: ignore[attr-defined]
                          json={"type": key_type})


def test_keys_create_read_list_config_rotate_delete(vault: object) -> None:
    transit = vault
    transit.create_key(name="hv-aes")  # type: ignore[attr-defined]
    transit.create_key(name="hv-ec", key_type="ecdsa-p256")  # type: ignore[attr-defined]
    read = transit.read_key(name="hv-ec")["data"]  # type: ignore[attr-defined]
    assert read["type"] == "ecdsa-p256" and read["supports_signing"] is True
    assert "BEGIN PUBLIC KEY" in read["keys"]["1"]["public_key"]
    assert {"hv-aes", "hv-ec"} <= set(transit.list_keys()["data"]["keys"])  # type: ignore[attr-defined]
    transit.rotate_key(name="hv-aes")  # type: ignore[attr-defined]
    transit.update_key_configuration(  # type: ignore[attr-defined]
        name="hv-aes", min_decryption_version=2, deletion_allowed=True,
        auto_rotate_period="24h")
    read = transit.read_key(name="hv-aes")["data"]  # type: ignore[attr-defined]
    assert (read["latest_version"], read["min_decryption_version"]) == (2, 2)
    assert read["deletion_allowed"] is True and read["auto_rotate_period"] == 86400
    transit.delete_key(name="hv-aes")  # type: ignore[attr-defined]
    assert "hv-aes" not in transit.list_keys()["data"]["keys"]  # type: ignore[attr-defined]


def test_encrypt_decrypt_rewrap_single_and_batch(vault: object) -> None:
    transit = vault
    transit.create_key(name="hv-data")  # type: ignore[attr-defined]
    text = transit.encrypt_data(  # type: ignore[attr-defined]
        name="hv-data", plaintext=b64(b"secret"))["data"]["ciphertext"]
    transit.rotate_key(name="hv-data")  # type: ignore[attr-defined]
    moved = transit.rewrap_data(  # type: ignore[attr-defined]
        name="hv-data", ciphertext=text)["data"]["ciphertext"]
    assert moved.startswith("vault:v2:")
    plain = transit.decrypt_data(name="hv-data", ciphertext=moved)  # type: ignore[attr-defined]
    assert plain["data"]["plaintext"] == b64(b"secret")
    batch = transit.encrypt_data(  # type: ignore[attr-defined]
        name="hv-data", batch_input=[{"plaintext": b64(b"a"), "reference": "1"},
                                     {"plaintext": b64(b"b"), "reference": "2"}])
    results = batch["data"]["batch_results"]
    assert [r["reference"] for r in results] == ["1", "2"]
    back = transit.decrypt_data(  # type: ignore[attr-defined]
        name="hv-data", batch_input=[{"ciphertext": r["ciphertext"]} for r in results])
    assert [r["plaintext"] for r in back["data"]["batch_results"]] == [b64(b"a"), b64(b"b")]


def test_datakey_random_hash(vault: object) -> None:
    transit = vault
    transit.create_key(name="hv-dk")  # type: ignore[attr-defined]
    for bits in (128, 256, 512):
        made = transit.generate_data_key(  # type: ignore[attr-defined]
            name="hv-dk", key_type="plaintext", bits=bits)["data"]
        assert len(base64.b64decode(made["plaintext"])) == bits // 8
        opened = transit.decrypt_data(  # type: ignore[attr-defined]
            name="hv-dk", ciphertext=made["ciphertext"])["data"]["plaintext"]
        assert opened == made["plaintext"]
    wrapped = transit.generate_data_key(  # type: ignore[attr-defined]
        name="hv-dk", key_type="wrapped")["data"]
    assert "plaintext" not in wrapped
    random = transit.generate_random_bytes(  # type: ignore[attr-defined]
        n_bytes=16, output_format="hex")["data"]["random_bytes"]
    assert len(bytes.fromhex(random)) == 16
    digest = transit.hash_data(hash_input=b64(b"abc"))["data"]["sum"]  # type: ignore[attr-defined]
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(("key_type", "options"), [
    ("ed25519", {}),
    ("ecdsa-p256", {"hash_algorithm": "sha2-256"}),
    ("ecdsa-p384", {"hash_algorithm": "sha2-384", "marshaling_algorithm": "jws"}),
    ("rsa-3072", {"hash_algorithm": "sha2-512", "signature_algorithm": "pss"}),
    ("rsa-3072", {"hash_algorithm": "sha2-256", "signature_algorithm": "pkcs1v15"}),
    ("ecdsa-p521", {"hash_algorithm": "sha2-512", "marshaling_algorithm": "jws"}),
    ("kq-ml-dsa-65", {}),
])
def test_sign_and_verify(vault: object, key_type: str, options: dict[str, str]) -> None:
    transit = vault
    name = f"hv-sign-{key_type}-{options.get('signature_algorithm', 'default')}"
    _create(transit, name, key_type)
    signed = transit.sign_data(  # type: ignore[attr-defined]
        name=name, hash_input=b64(b"message"), **options)["data"]["signature"]
    assert signed.startswith("vault:v1:")
    verdict = transit.verify_signed_data(  # type: ignore[attr-defined]
        name=name, hash_input=b64(b"message"), signature=signed, **options)["data"]["valid"]
    assert verdict is True
    wrong = transit.verify_signed_data(  # type: ignore[attr-defined]
        name=name, hash_input=b64(b"other"), signature=signed, **options)["data"]["valid"]
    assert wrong is False


def test_hmac_and_verify(vault: object) -> None:
    transit = vault
    _create(transit, "hv-mac", "hmac")
    tag = transit.generate_hmac(  # type: ignore[attr-defined]
        name="hv-mac", hash_input=b64(b"m"))["data"]["hmac"]
    assert tag.startswith("vault:v1:")
    verdict = transit.verify_signed_data(  # type: ignore[attr-defined]
        name="hv-mac", hash_input=b64(b"m"), hmac=tag)["data"]["valid"]
    assert verdict is True


def test_export_of_exportable_keys(vault: object) -> None:
    from cryptography.hazmat.primitives import serialization

    transit = vault
    transit.create_key(name="hv-exp", exportable=True)  # type: ignore[attr-defined]
    exported = transit.export_key(  # type: ignore[attr-defined]
        name="hv-exp", key_type="encryption-key")["data"]
    assert exported["name"] == "hv-exp" and len(base64.b64decode(exported["keys"]["1"])) == 32
    transit.create_key(  # type: ignore[attr-defined]
        name="hv-exp-ec", key_type="ecdsa-p256", exportable=True)
    pem = transit.export_key(  # type: ignore[attr-defined]
        name="hv-exp-ec", key_type="signing-key", version="latest")["data"]["keys"]["1"]
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    public = transit.read_key(name="hv-exp-ec")["data"]["keys"]["1"]["public_key"]
    assert private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode() == public
    # aes128-gcm96: a 16-byte AES-GCM key; pyca decrypts transit's ciphertext with it.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    transit._adapter.post("/v1/transit/keys/hv-128",  # type: ignore[attr-defined]
                          json={"type": "aes128-gcm96", "exportable": True})  # hvac's list lacks it
    raw = base64.b64decode(transit.export_key(  # type: ignore[attr-defined]
        name="hv-128", key_type="encryption-key")["data"]["keys"]["1"])
    assert len(raw) == 16
    text = transit.encrypt_data(  # type: ignore[attr-defined]
        name="hv-128", plaintext=b64(b"sixteen"))["data"]["ciphertext"]
    raw_text = base64.b64decode(text.split(":", 2)[2])
    assert raw_text[3] == 5  # FORMAT.md's algorithm id of aes-128-gcm
    header = raw_text[:24 + 12]  # the fixed header, then the 12-byte nonce
    from keyquorum.keys.ciphertext import canonical_context

    assert AESGCM(raw).decrypt(header[24:], raw_text[36:],
                               header + canonical_context(None)) == b"sixteen"
    transit.create_key(name="hv-closed")  # type: ignore[attr-defined]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not exportable"):
        transit.export_key(name="hv-closed", key_type="encryption-key")  # type: ignore[attr-defined]


def test_methods_keyquorum_does_not_offer_say_so(vault: object) -> None:
    transit = vault
    transit.create_key(name="hv-no", exportable=True)  # type: ignore[attr-defined]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="backup is not supported"):
        transit.backup_key(name="hv-no")  # type: ignore[attr-defined]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="restore is not supported"):
        transit.restore_key(backup="eA==", name="hv-no")  # type: ignore[attr-defined]



def test_trim_destroys_old_versions(vault: object) -> None:
    transit = vault
    transit.create_key(name="hv-trim")  # type: ignore[attr-defined]
    transit.rotate_key(name="hv-trim")  # type: ignore[attr-defined]
    transit.rotate_key(name="hv-trim")  # type: ignore[attr-defined]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="minimum encryption version"):
        transit.trim_key(name="hv-trim", min_version=2)  # type: ignore[attr-defined]
    transit.update_key_configuration(  # type: ignore[attr-defined]
        name="hv-trim", min_decryption_version=2, min_encryption_version=3)  # hvac: enc > dec
    transit.trim_key(name="hv-trim", min_version=2)  # type: ignore[attr-defined]
    read = transit.read_key(name="hv-trim")["data"]  # type: ignore[attr-defined]
    assert read["min_available_version"] == 2 and set(read["keys"]) == {"2", "3"}


def test_sys_and_token_calls(client: object) -> None:
    status = client.sys.read_seal_status()  # type: ignore[attr-defined]
    assert status["sealed"] is False and status["t"] == 2 and status["n"] == 3
    assert client.is_authenticated() is True  # type: ignore[attr-defined]
    assert client.sys.is_initialized() is True  # type: ignore[attr-defined]
    assert client.sys.is_sealed() is False  # type: ignore[attr-defined]
    looked = client.auth.token.lookup_self()["data"]  # type: ignore[attr-defined]
    assert looked["policies"] == ["root"] and looked["accessor"]
    mounts = client.sys.list_mounted_secrets_engines()["data"]  # type: ignore[attr-defined]
    assert mounts["transit/"]["type"] == "transit"


def test_a_wrong_token_is_forbidden(shared_server: ServerProcess) -> None:
    bad = hvac.Client(url=shared_server.addr, token="kq_" + "y" * 43)
    with pytest.raises(hvac.exceptions.Forbidden):
        bad.secrets.transit.encrypt_data(name="hv-data", plaintext=b64(b"x"))
    bad.adapter.close()
