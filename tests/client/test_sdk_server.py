"""The SDK against a real keyquorum server: every method round trips over HTTP."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import pytest

from keyquorum.client import (
    Client,
    DecryptItem,
    EncryptItem,
    ForbiddenError,
    InvalidCiphertextError,
    InvalidRequestError,
    Key,
    KeyquorumAPIError,
    KeyStateError,
    NotFoundError,
    SealedError,
    SignItem,
    TooLargeError,
    UnauthenticatedError,
    VerifyItem,
    VerifyMacItem,
)

pytestmark = pytest.mark.postgresql


@pytest.fixture
def kq(shared_inprocess) -> Iterator[Client]:
    with shared_inprocess.sdk(shared_inprocess.root_token) as client:
        yield client


def fresh(prefix: str) -> str:
    """A key name no other test uses."""
    return f"sdk/{prefix}-{uuid.uuid4().hex[:8]}"


def test_health_and_seal_status_need_no_token(shared_inprocess) -> None:
    with shared_inprocess.sdk(None) as anonymous:
        assert anonymous.health().sealed is False
        status = anonymous.seal_status()
    assert status.initialized and not status.sealed
    assert (status.threshold, status.shares) == (2, 3)


def test_create_get_update_and_list_keys(kq: Client) -> None:
    name = fresh("meta")
    key = kq.create_key(name, "aes-256-gcm", description="cards", owner="team-a",
                        labels={"env": "test"})
    assert isinstance(key, Key)
    assert (key.name, key.spec, key.purpose, key.state) == (name, "aes-256-gcm", "encrypt",
                                                           "enabled")
    assert key.primary_version == 1 and key.versions[0].state == "active"
    assert kq.get_key(name).labels == {"env": "test"}
    updated = kq.update_key(name, description="card numbers", owner="team-b")
    assert (updated.description, updated.owner) == ("card numbers", "team-b")
    assert name in [k.name for k in kq.list_keys(prefix="sdk/").keys]


def test_iter_keys_follows_every_page(kq: Client) -> None:
    prefix = fresh("pages")
    names = {f"{prefix}/k{i}" for i in range(5)}
    for name in names:
        kq.create_key(name, "hmac-sha256")
    first = kq.list_keys(prefix=prefix + "/", limit=2)
    assert len(first.keys) == 2 and first.next_page_token
    assert {k.name for k in kq.iter_keys(prefix=prefix + "/", page_size=2)} == names


def test_encrypt_decrypt_round_trip_with_context(kq: Client) -> None:
    name = fresh("enc")
    kq.create_key(name, "aes-256-gcm")
    sealed = kq.encrypt(name, b"\x00secret\xff", {"tenant": "acme", "field": "pan"})
    assert sealed.ciphertext.startswith("kq1:") and sealed.key_version == 1
    opened = kq.decrypt(sealed.ciphertext, {"field": "pan", "tenant": "acme"})
    assert (opened.plaintext, opened.key, opened.key_version) == (b"\x00secret\xff", name, 1)
    assert kq.decrypt(sealed.ciphertext, {"tenant": "acme", "field": "pan"},
                      key=name).plaintext == b"\x00secret\xff"


def test_wrong_context_and_tampered_ciphertext_raise_invalid_ciphertext(kq: Client) -> None:
    name = fresh("tamper")
    kq.create_key(name, "chacha20-poly1305")
    ciphertext = kq.encrypt(name, b"data", {"a": "1"}).ciphertext
    with pytest.raises(InvalidCiphertextError) as caught:
        kq.decrypt(ciphertext, {"a": "2"})
    assert caught.value.status == 400 and caught.value.request_id
    flipped = ciphertext[:-4] + ("A" if ciphertext[-4] != "A" else "B") + ciphertext[-3:]
    with pytest.raises(InvalidCiphertextError):
        kq.decrypt(flipped, {"a": "1"})


def test_rotate_then_old_ciphertexts_still_decrypt_and_reencrypt_moves_them(kq: Client) -> None:
    name = fresh("rot")
    kq.create_key(name, "aes-256-gcm-siv")
    old = kq.encrypt(name, b"v1 data").ciphertext
    rotated = kq.rotate_key(name)
    assert rotated.primary_version == 2 and len(rotated.versions) == 2
    assert kq.decrypt(old).key_version == 1
    moved = kq.reencrypt(old)
    assert moved.key_version == 2
    assert kq.decrypt(moved.ciphertext).plaintext == b"v1 data"


def test_reencrypt_to_another_key_and_context(kq: Client) -> None:
    source, target = fresh("src"), fresh("dst")
    kq.create_key(source, "aes-256-gcm")
    kq.create_key(target, "xchacha20-poly1305")
    ciphertext = kq.encrypt(source, b"moving", {"a": "1"}).ciphertext
    moved = kq.reencrypt(ciphertext, {"a": "1"}, destination_key=target,
                         destination_context={"b": "2"})
    opened = kq.decrypt(moved.ciphertext, {"b": "2"})
    assert (opened.plaintext, opened.key) == (b"moving", target)


def test_disable_and_enable_whole_key_and_one_version(kq: Client) -> None:
    name = fresh("dis")
    kq.create_key(name, "aes-256-gcm")
    assert kq.disable_key(name).state == "disabled"
    with pytest.raises(KeyStateError):
        kq.encrypt(name, b"x")
    assert kq.enable_key(name).state == "enabled"
    kq.rotate_key(name)
    suspended = kq.disable_key(name, version=1)
    assert {v.version: v.state for v in suspended.versions}[1] == "suspended"
    resumed = kq.enable_key(name, version=1)
    assert {v.version: v.state for v in resumed.versions}[1] != "suspended"


def test_revoked_version_refuses_until_the_unsafe_override(kq: Client) -> None:
    name = fresh("rev")
    kq.create_key(name, "aes-256-gcm")
    ciphertext = kq.encrypt(name, b"old secret").ciphertext
    kq.rotate_key(name)
    revoked = kq.revoke_key(name, "compromised", version=1, note="laptop stolen")
    assert {v.version: v.state for v in revoked.versions}[1] == "compromised"
    with pytest.raises(KeyStateError):
        kq.decrypt(ciphertext)
    assert kq.decrypt(ciphertext, unsafe_allow_compromised=True).plaintext == b"old secret"


def test_schedule_and_cancel_deletion(kq: Client) -> None:
    name = fresh("del")
    kq.create_key(name, "aes-256-gcm")
    scheduled = kq.schedule_deletion(name, days=7)
    assert scheduled.destroy_at is not None
    assert kq.get_key(name).state == "destroy-scheduled"
    assert kq.cancel_deletion(name).state != "destroy-scheduled"


@pytest.mark.parametrize("spec", ["ed25519", "ecdsa-p256"])
def test_sign_and_verify_message_and_digest(kq: Client, spec: str) -> None:
    name = fresh(spec)
    kq.create_key(name, spec)
    assert "BEGIN PUBLIC KEY" in kq.public_key(name).public_key_pem
    signature = kq.sign(name, b"release 1.0")
    assert signature.key_version == 1 and signature.signature
    assert kq.verify(name, signature.signature, b"release 1.0").valid
    assert not kq.verify(name, signature.signature, b"release 2.0").valid
    if spec == "ecdsa-p256":
        digest = hashlib.sha256(b"big file").digest()
        by_digest = kq.sign(name, digest=digest, hash="sha256").signature
        assert kq.verify(name, by_digest, b"big file")
        assert kq.verify(name, by_digest, digest=digest, hash="sha256", key_version=1)


def test_rsa_pkcs1v15_scheme_through_the_sdk(kq: Client) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    name = fresh("rsa-2048")
    kq.create_key(name, "rsa-2048")
    public = serialization.load_pem_public_key(kq.public_key(name).public_key_pem.encode())
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    signature = kq.sign(name, b"release 1.0", scheme="pkcs1v15").signature
    public.verify(signature, b"release 1.0", padding.PKCS1v15(), hashes.SHA256())
    assert kq.verify(name, signature, b"release 1.0", scheme="pkcs1v15").valid
    assert not kq.verify(name, signature, b"release 1.0").valid  # not a PSS signature
    batch = kq.sign_batch(name, [SignItem(message=b"a", scheme="pkcs1v15"), b"a"])
    checks = kq.verify_batch(name, [VerifyItem(batch[0].signature, b"a", scheme="pkcs1v15"),
                                    VerifyItem(batch[1].signature, b"a", scheme="pss")])
    assert [c.valid for c in checks] == [True, True]
    other = fresh("p521")
    kq.create_key(other, "ecdsa-p521")
    with pytest.raises(InvalidRequestError, match="scheme applies to RSA keys only"):
        kq.sign(other, b"x", scheme="pkcs1v15")


def test_rsa_encryption_key_through_the_sdk(kq: Client) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    name = fresh("rsa-enc")
    assert kq.create_key(name, "rsa-2048", purpose="encrypt").purpose == "encrypt"
    public = serialization.load_pem_public_key(kq.public_key(name).public_key_pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    block = public.encrypt(b"token", padding.OAEP(mgf=padding.MGF1(hashes.SHA1()),
                                                  algorithm=hashes.SHA1(), label=None))
    opened = kq.decrypt_oaep(name, block, hash="sha1")
    assert (opened.plaintext, opened.key_version) == (b"token", 1)
    made = kq.encrypt_oaep(name, b"server side")
    assert len(made.ciphertext) == 256 and made.key_version == 1
    assert kq.decrypt_oaep(name, made.ciphertext, key_version=1).plaintext == b"server side"
    with pytest.raises(InvalidCiphertextError):
        kq.decrypt_oaep(name, made.ciphertext, hash="sha1")


def test_mac_and_verify_mac(kq: Client) -> None:
    name = fresh("mac")
    kq.create_key(name, "hmac-sha384")
    tag = kq.mac(name, b"message")
    assert len(tag.mac) == 48
    assert kq.verify_mac(name, b"message", tag.mac).valid
    assert not kq.verify_mac(name, b"messagE", tag.mac).valid


def test_datakey_unwraps_to_its_plaintext(kq: Client) -> None:
    name = fresh("dk")
    kq.create_key(name, "aes-256-gcm")
    data_key = kq.datakey(name, context={"file": "a.bin"})
    assert data_key.plaintext is not None and len(data_key.plaintext) == 32
    assert kq.decrypt(data_key.ciphertext, {"file": "a.bin"}).plaintext == data_key.plaintext
    assert kq.datakey(name, plaintext=False).plaintext is None


def test_decapsulate_recovers_the_shared_secret(kq: Client) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    name = fresh("kem")
    kq.create_key(name, "ml-kem-768")
    public = load_pem_public_key(kq.public_key(name).public_key_pem.encode())
    shared, encapsulation = public.encapsulate()  # type: ignore[union-attr]
    assert kq.decapsulate(name, encapsulation).shared_secret == shared


def test_random_gives_the_bytes_asked_for(kq: Client) -> None:
    assert len(kq.random(33)) == 33
    with pytest.raises(InvalidRequestError):
        kq.random(5000)


def test_batches_answer_in_order_with_errors_in_place(kq: Client) -> None:
    enc, sig, mac = fresh("benc"), fresh("bsig"), fresh("bmac")
    kq.create_key(enc, "aes-256-gcm")
    kq.create_key(sig, "ed25519")
    kq.create_key(mac, "hmac-sha256")
    sealed = kq.encrypt_batch(enc, [b"one", EncryptItem(b"two", {"n": "2"}), b"x" * 70_000])
    assert isinstance(sealed[2], TooLargeError)
    first, second = sealed[0], sealed[1]
    assert not isinstance(first, KeyquorumAPIError)
    assert not isinstance(second, KeyquorumAPIError)
    opened = kq.decrypt_batch([first.ciphertext, DecryptItem(second.ciphertext, {"n": "2"}),
                               DecryptItem(second.ciphertext, {"n": "3"})])
    assert [getattr(o, "plaintext", None) for o in opened[:2]] == [b"one", b"two"]
    assert isinstance(opened[2], InvalidCiphertextError)
    moved = kq.reencrypt_batch([first.ciphertext])
    assert not isinstance(moved[0], KeyquorumAPIError)
    signatures = kq.sign_batch(sig, [b"a", SignItem(message=b"b")])
    checks = kq.verify_batch(sig, [VerifyItem(s.signature, m) for s, m in
                                   zip(signatures, [b"a", b"x"], strict=True)
                                   if not isinstance(s, KeyquorumAPIError)])
    assert [getattr(c, "valid", None) for c in checks] == [True, False]
    tags = kq.mac_batch(mac, [b"m1", b"m2"])
    verified = kq.verify_mac_batch(mac, [VerifyMacItem(m, t.mac) for t, m in
                                         zip(tags, [b"m1", b"m1"], strict=True)
                                         if not isinstance(t, KeyquorumAPIError)])
    assert [getattr(v, "valid", None) for v in verified] == [True, False]


def test_errors_map_to_their_exception_classes(shared_inprocess, kq: Client) -> None:
    with pytest.raises(NotFoundError) as caught:
        kq.get_key("sdk/no-such-key")
    assert caught.value.code == "not_found" and caught.value.status == 404
    with (shared_inprocess.sdk("kq-not-a-real-token") as stranger,
          pytest.raises(UnauthenticatedError) as unauth):
        stranger.list_keys()
    assert "kq-not-a-real-token" not in str(unauth.value) + repr(unauth.value)
    name = fresh("conflict")
    kq.create_key(name, "aes-256-gcm")
    with pytest.raises(KeyquorumAPIError) as taken:
        kq.create_key(name, "aes-256-gcm")
    assert taken.value.code == "conflict"
    with pytest.raises(InvalidRequestError):
        kq.create_key(fresh("bad") + "/UPPER", "aes-256-gcm")


def test_tokens_and_policies_limit_what_a_token_may_do(kq: Client, shared_inprocess) -> None:
    app_key, other_key = fresh("app"), fresh("other")
    kq.create_key(app_key, "aes-256-gcm")
    kq.create_key(other_key, "aes-256-gcm")
    policy_name = f"sdk-app-{uuid.uuid4().hex[:6]}"
    policy = kq.put_policy(policy_name, [{"keys": app_key, "operations": ["encrypt", "decrypt"]}])
    assert policy.rules[0].operations == ("encrypt", "decrypt")
    assert kq.get_policy(policy_name).rules[0].keys == app_key
    assert policy_name in [p.name for p in kq.list_policies()]

    token = kq.create_token([policy_name], ttl="1h", name="sdk-test")
    assert token.token and token.accessor and token.expires_at is not None
    with shared_inprocess.sdk(token.token) as app:
        info = app.token_self()
        assert info.accessor == token.accessor and policy_name in info.policies
        ciphertext = app.encrypt(app_key, b"ok").ciphertext
        assert app.decrypt(ciphertext).plaintext == b"ok"
        with pytest.raises(ForbiddenError):
            app.encrypt(other_key, b"no")
        kq.revoke_token(token.accessor)
        with pytest.raises(UnauthenticatedError):
            app.token_self()

    kq.delete_policy(policy_name)
    with pytest.raises(NotFoundError):
        kq.get_policy(policy_name)


def test_audit_records_every_use(kq: Client) -> None:
    name = fresh("aud")
    kq.create_key(name, "aes-256-gcm")
    kq.encrypt(name, b"audited")
    with pytest.raises(NotFoundError):
        kq.get_key(name + "-missing")
    records = list(kq.iter_audit(key=name))
    assert {"create", "encrypt"} <= {r.operation for r in records}
    assert all(r.outcome == "ok" for r in records)
    page = kq.list_audit(key=name, operation="encrypt", limit=1)
    assert len(page.records) == 1 and page.records[0].key_version == 1


def test_seal_then_unseal_with_the_threshold(inprocess_server) -> None:
    with inprocess_server.sdk(inprocess_server.root_token) as kq:
        kq.create_key("seal/one", "aes-256-gcm")
        assert kq.seal().sealed
        with pytest.raises(SealedError):
            kq.get_key("seal/one")
        assert kq.health().sealed
        progress = kq.unseal(inprocess_server.shares[0])
        assert progress.sealed and progress.progress == 1 and progress.nonce
        with pytest.raises(ForbiddenError):  # without the round's nonce: kept (review F14)
            kq.unseal_reset()
        assert kq.unseal_reset(progress.nonce).progress == 0
        kq.unseal(inprocess_server.shares[1])
        assert not kq.unseal(inprocess_server.shares[2]).sealed
        assert kq.get_key("seal/one").name == "seal/one"


def test_init_returns_shares_and_root_token_once(fresh_inprocess) -> None:
    with fresh_inprocess.sdk(None) as kq:
        assert not kq.seal_status().initialized
        result = kq.init(3, 2, custodians=["ana", "bo", "cy"])
        assert len(result.shares) == 3 and result.root_token and result.commitments
        with pytest.raises(KeyquorumAPIError):
            kq.init(3, 2)
        for share in result.shares[:2]:
            status = kq.unseal(share)
    assert not status.sealed
