"""KEMs: round trips for all four, known answers from RFC 9180 and the X-Wing
draft, and garbage encapsulations refused with InvalidCiphertext."""

from __future__ import annotations

import hashlib

import pytest

from keyquorum.crypto.errors import InvalidCiphertext, UnsupportedAlgorithm
from keyquorum.crypto.kem import KEM_ALGORITHMS, KemKey, encapsulate, generate_private

ENCAPSULATION_SIZES = {"ml-kem-768": 1088, "ml-kem-1024": 1568,
                       "x25519-ml-kem-768": 1120, "x25519": 32}
PUBLIC_SIZES = {"ml-kem-768": 1184, "ml-kem-1024": 1568, "x25519-ml-kem-768": 1216, "x25519": 32}
PRIVATE_SIZES = {"ml-kem-768": 64, "ml-kem-1024": 64, "x25519-ml-kem-768": 96, "x25519": 32}

# RFC 9180 Appendix A.1 (DHKEM(X25519, HKDF-SHA256)), recipient side.
RFC9180_SK_R = "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"
RFC9180_PK_R = "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"
RFC9180_ENC = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"
RFC9180_SS = "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc"

# draft-connolly-cfrg-xwing-kem-10, Appendix C, first vector. Our 96-byte private
# material is the draft's expanded seed: SHAKE256(seed, 96) = ML-KEM seed || X25519 sk.
XWING_SEED = "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26"
XWING_PK_PREFIX = "e2236b35a8c24b39b10aa1323a96a919a2ced88400633a7b07131713fc14b2b5b19cfc3d"
XWING_PK_SUFFIX = "eff389b27dce59844570216223593d4ba32d9abac8cd049040ef6534"
XWING_CT = (
    "b83aa828d4d62b9a83ceffe1d3d3bb1ef31264643c070c5798927e41fb07914a273f8f96"
    "e7826cd5375a283d7da885304c5de0516a0f0654243dc5b97f8bfeb831f68251219aabdd"
    "723bc6512041acbaef8af44265524942b902e68ffd23221cda70b1b55d776a92d1143ea3"
    "a0c475f63ee6890157c7116dae3f62bf72f60acd2bb8cc31ce2ba0de364f52b8ed38c79d"
    "719715963a5dd3842d8e8b43ab704e4759b5327bf027c63c8fa857c4908d5a8a7b88ac7f"
    "2be394d93c3706ddd4e698cc6ce370101f4d0213254238b4a2e8821b6e414a1cf20f6c12"
    "44b699046f5a01caa0a1a55516300b40d2048c77cc73afba79afeea9d2c0118bdf2adb88"
    "70dc328c5516cc45b1a2058141039e2c90a110a9e16b318dfb53bd49a126d6b73f215787"
    "517b8917cc01cabd107d06859854ee8b4f9861c226d3764c87339ab16c3667d2f49384e5"
    "5456dd40414b70a6af841585f4c90c68725d57704ee8ee7ce6e2f9be582dbee985e038ff"
    "c346ebfb4e22158b6c84374a9ab4a44e1f91de5aac5197f89bc5e5442f51f9a5937b102b"
    "a3beaebf6e1c58380a4a5fedce4a4e5026f88f528f59ffd2db41752b3a3d90efabe46389"
    "9b7d40870c530c8841e8712b733668ed033adbfafb2d49d37a44d4064e5863eb0af0a08d"
    "47b3cc888373bc05f7a33b841bc2587c57eb69554e8a3767b7506917b6b70498727f16ea"
    "c1a36ec8d8cfaf751549f2277db277e8a55a9a5106b23a0206b4721fa9b3048552c5bd5b"
    "594d6e247f38c18c591aea7f56249c72ce7b117afcc3a8621582f9cf71787e183dee0936"
    "7976e98409ad9217a497df888042384d7707a6b78f5f7fb8409e3b535175373461b77600"
    "2d799cbad62860be70573ecbe13b246e0da7e93a52168e0fb6a9756b895ef7f0147a0dc8"
    "1bfa644b088a9228160c0f9acf1379a2941cd28c06ebc80e44e17aa2f8177010afd78a97"
    "ce0868d1629ebb294c5151812c583daeb88685220f4da9118112e07041fcc24d5564a99f"
    "dbde28869fe0722387d7a9a4d16e1cc8555917e09944aa5ebaaaec2cf62693afad42a3f5"
    "18fce67d273cc6c9fb5472b380e8573ec7de06a3ba2fd5f931d725b493026cb0acbd3fe6"
    "2d00e4c790d965d7a03a3c0b4222ba8c2a9a16e2ac658f572ae0e746eafc4feba023576f"
    "08942278a041fb82a70a595d5bacbf297ce2029898a71e5c3b0d1c6228b485b1ade509b3"
    "5fbca7eca97b2132e7cb6bc465375146b7dceac969308ac0c2ac89e7863eb8943015b243"
    "14cafb9c7c0e85fe543d56658c213632599efabfc1ec49dd8c88547bb2cc40c9d38cbd30"
    "99b4547840560531d0188cd1e9c23a0ebee0a03d5577d66b1d2bcb4baaf21cc7fef1e038"
    "06ca96299df0dfbc56e1b2b43e4fc20c37f834c4af62127e7dae86c3c25a2f696ac8b589"
    "dec71d595bfbe94b5ed4bc07d800b330796fda89edb77be0294136139354eb8cd3759157"
    "8f9c600dd9be8ec6219fdd507adf3397ed4d68707b8d13b24ce4cd8fb22851bfe9d63240"
    "7f31ed6f7cb1600de56f17576740ce2a32fc5145030145cfb97e63e0e41d354274a079d3"
    "e6fb2e15"
)
XWING_SS = "d2df0522128f09dd8e2c92b1e905c793d8f57a54c3da25861f10bf4ca613e384"


@pytest.fixture(scope="module", params=KEM_ALGORITHMS)
def key(request: pytest.FixtureRequest) -> KemKey:
    return KemKey(request.param, generate_private(request.param))


def test_encapsulate_then_decapsulate_agree(key: KemKey) -> None:
    shared, encapsulation = encapsulate(key.alg, key.public_pem())
    assert len(shared) == 32
    assert len(encapsulation) == ENCAPSULATION_SIZES[key.alg]
    assert key.decapsulate(encapsulation) == shared


def test_each_encapsulation_is_fresh(key: KemKey) -> None:
    first = encapsulate(key.alg, key.public_pem())
    second = encapsulate(key.alg, key.public_pem())
    assert first[0] != second[0] and first[1] != second[1]


def test_sizes_and_repr(key: KemKey) -> None:
    assert len(generate_private(key.alg)) == PRIVATE_SIZES[key.alg]
    assert len(key.public_raw()) == PUBLIC_SIZES[key.alg]
    assert repr(key) == f"KemKey(alg={key.alg!r})"


def test_another_key_gets_another_secret(key: KemKey) -> None:
    other = KemKey(key.alg, generate_private(key.alg))
    shared, encapsulation = encapsulate(key.alg, other.public_pem())
    assert key.decapsulate(encapsulation) != shared


@pytest.mark.parametrize("delta", [-1, 1])
def test_wrong_length_encapsulation_is_refused(key: KemKey, delta: int) -> None:
    with pytest.raises(InvalidCiphertext):
        key.decapsulate(bytes(ENCAPSULATION_SIZES[key.alg] + delta))


def test_empty_encapsulation_is_refused(key: KemKey) -> None:
    with pytest.raises(InvalidCiphertext):
        key.decapsulate(b"")


def test_small_order_x25519_point_is_refused() -> None:
    key = KemKey("x25519", generate_private("x25519"))
    with pytest.raises(InvalidCiphertext):
        key.decapsulate(bytes(32))  # the all-zero point gives an all-zero DH output


def test_tampered_ml_kem_ciphertext_gives_a_different_secret(key: KemKey) -> None:
    if key.alg == "x25519":
        pytest.skip("x25519 has no implicit rejection")
    shared, encapsulation = encapsulate(key.alg, key.public_pem())
    tampered = bytearray(encapsulation)
    tampered[0] ^= 1
    assert key.decapsulate(bytes(tampered)) != shared


def test_hybrid_public_pem_is_labelled_raw_bytes() -> None:
    key = KemKey("x25519-ml-kem-768", generate_private("x25519-ml-kem-768"))
    pem = key.public_pem()
    assert pem.startswith("-----BEGIN X25519-ML-KEM-768 PUBLIC KEY-----\n")
    assert pem.rstrip().endswith("-----END X25519-ML-KEM-768 PUBLIC KEY-----")
    assert all(len(line) <= 64 for line in pem.splitlines())


def test_rfc9180_dhkem_x25519_known_answer() -> None:
    key = KemKey("x25519", bytes.fromhex(RFC9180_SK_R))
    assert key.public_raw().hex() == RFC9180_PK_R
    assert key.decapsulate(bytes.fromhex(RFC9180_ENC)).hex() == RFC9180_SS


def test_xwing_known_answer() -> None:
    expanded = hashlib.shake_256(bytes.fromhex(XWING_SEED)).digest(96)
    key = KemKey("x25519-ml-kem-768", expanded)
    public = key.public_raw().hex()
    assert public.startswith(XWING_PK_PREFIX) and public.endswith(XWING_PK_SUFFIX)
    assert key.decapsulate(bytes.fromhex(XWING_CT)).hex() == XWING_SS


@pytest.mark.parametrize("alg", KEM_ALGORITHMS)
def test_encapsulate_refuses_a_key_of_another_algorithm(alg: str) -> None:
    other = next(a for a in KEM_ALGORITHMS if a != alg)
    pem = KemKey(other, generate_private(other)).public_pem()
    with pytest.raises(ValueError):
        encapsulate(alg, pem)


GARBAGE_PEMS = ["", "not a pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]


@pytest.mark.parametrize("pem", GARBAGE_PEMS)
@pytest.mark.parametrize("alg", KEM_ALGORITHMS)
def test_encapsulate_refuses_garbage(alg: str, pem: str) -> None:
    with pytest.raises(ValueError):
        encapsulate(alg, pem)


def test_bad_private_material_and_unknown_algorithm() -> None:
    with pytest.raises(ValueError):
        KemKey("ml-kem-768", bytes(32))
    with pytest.raises(ValueError):
        KemKey("x25519-ml-kem-768", bytes(64))
    with pytest.raises(UnsupportedAlgorithm):
        generate_private("kyber512")
    with pytest.raises(UnsupportedAlgorithm):
        KemKey("x448", bytes(56))
