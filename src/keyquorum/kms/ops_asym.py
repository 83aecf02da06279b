"""KMS signatures, MACs, public keys and data key pairs: Sign, Verify, GetPublicKey,
GenerateMac, VerifyMac, GenerateDataKeyPair(+WithoutPlaintext).

Signing algorithms map onto keyquorum's signing specs: ECDSA (DER signatures, as
AWS), RSASSA-PSS with the salt as long as the digest (as AWS), RSASSA-PKCS1-v1_5
(the native ``scheme`` pkcs1v15), Ed25519 and ML-DSA over RAW messages or an
EXTERNAL_MU. A signature or
MAC that does not verify is audited as a completed verification (as natively) and
answered with AWS's ``KMSInvalidSignatureException`` / ``KMSInvalidMacException``.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keyquorum.crypto.signing import EXTERNAL_MU
from keyquorum.keys.models import Key
from keyquorum.keys.specs import get_spec
from keyquorum.kms.call import MAX_PLAINTEXT, KmsCall, require_usage
from keyquorum.kms.errors import KmsRequestError, unsupported
from keyquorum.kms.ids import MACS, SIGNING, USAGES, aws_spec
from keyquorum.kms.ops_crypto import (
    _audited,
    b64,
    blob_of,
    encryption_algorithms,
    guarded,
    matches_algorithm,
)
from keyquorum.kms.ops_keys import on_key
from keyquorum.kms.registry import operation
from keyquorum.service.context import RequestContext

_ALL_SIGNING = ("RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
                "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512", "ECDSA_SHA_256", "ECDSA_SHA_384",
                "ECDSA_SHA_512", "SM2DSA", "ML_DSA_SHAKE_256", "ED25519_SHA_512",
                "ED25519_PH_SHA_512")
_MAX_SIGN_MESSAGE = 4096


async def _key_for(call: KmsCall, purpose: str) -> Key:
    target = await call.target(cached=True)
    key = target.require(str(call.body.get("KeyId")))
    require_usage(key, purpose, call.action)
    return key


def _scheme(algorithm: str) -> str | None:
    """The native RSA ``scheme`` a SigningAlgorithm names (None: not RSA)."""
    if algorithm.startswith("RSASSA_PKCS1_V1_5"):
        return "pkcs1v15"
    return "pss" if algorithm.startswith("RSASSA_PSS") else None


def _signing(call: KmsCall, key: Key) -> tuple[str, str | None, bool]:
    """(SigningAlgorithm, hash name, whether Message is a digest)."""
    algorithm = call.choice("SigningAlgorithm", _ALL_SIGNING)
    assert algorithm is not None
    message_type = call.choice("MessageType", ("RAW", "DIGEST", "EXTERNAL_MU"), "RAW")
    if algorithm not in SIGNING.get(key.spec, ()):
        raise KmsRequestError(f"SigningAlgorithm {algorithm} is not valid for this key; it "
                              f"supports {', '.join(SIGNING.get(key.spec, ()))}",
                              "InvalidKeyUsageException")
    digest = message_type != "RAW"
    if message_type == "EXTERNAL_MU" and algorithm == "ML_DSA_SHAKE_256":
        return algorithm, EXTERNAL_MU, True  # the 64-byte mu the caller computed
    if message_type == "EXTERNAL_MU" or (digest and algorithm in ("ED25519_SHA_512",
                                                                  "ML_DSA_SHAKE_256")):
        raise unsupported(f"MessageType {message_type} with {algorithm} is not supported; "
                          "send the RAW message")
    hash_name = None if algorithm in ("ED25519_SHA_512", "ML_DSA_SHAKE_256") \
        else "sha" + algorithm[-3:]
    return algorithm, hash_name, digest


@operation("Sign", "sign")
async def sign(call: KmsCall) -> dict[str, Any]:
    message = call.blob("Message", limit=_MAX_SIGN_MESSAGE)
    assert message is not None
    key = await _key_for(call, "sign")
    algorithm, hash_name, digest = _signing(call, key)
    ops = call.services.operations

    def work(ctx: RequestContext) -> Any:
        done = guarded(key, lambda: ops.sign(
            ctx, key.name, message=None if digest else message,
            digest=message if digest else None, hash_name=hash_name,
            scheme=_scheme(algorithm)))
        return _audited({"KeyId": call.names.key_arn(key.id),
                         "Signature": b64(done.signature), "SigningAlgorithm": algorithm},
                        done.key, done.version)

    return await call.run("sign", key.name, work, permission="sign")  # type: ignore[no-any-return]


@operation("Verify", "verify")
async def verify(call: KmsCall) -> dict[str, Any]:
    message = call.blob("Message", limit=_MAX_SIGN_MESSAGE)
    signature = call.blob("Signature")
    assert message is not None and signature is not None
    key = await _key_for(call, "sign")
    algorithm, hash_name, digest = _signing(call, key)
    ops = call.services.operations

    def work(ctx: RequestContext) -> Any:
        done = guarded(key, lambda: ops.verify(
            ctx, key.name, signature, message=None if digest else message,
            digest=message if digest else None, hash_name=hash_name, version=None,
            scheme=_scheme(algorithm)))
        return _audited({"KeyId": call.names.key_arn(key.id), "SignatureValid": done.valid,
                         "SigningAlgorithm": algorithm}, done.key, done.version)

    answer: dict[str, Any] = await call.run("verify", key.name, work, permission="verify")
    if not answer["SignatureValid"]:
        raise KmsRequestError("the signature is not valid for this message and key",
                              "KMSInvalidSignatureException")
    return answer


@operation("GetPublicKey", "read")
async def get_public_key(call: KmsCall) -> dict[str, Any]:
    ops = call.services.operations

    def work(_ctx: RequestContext, key: Key) -> Any:
        if not get_spec(key.spec).asymmetric:
            raise unsupported("GetPublicKey applies to asymmetric keys; this key is symmetric")
        found = ops.public_key(key.name, None)
        public = serialization.load_pem_public_key(found.pem.encode())
        der = public.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        spec = aws_spec(key.spec)
        answer: dict[str, Any] = {
            "KeyId": call.names.key_arn(key.id), "PublicKey": b64(der),
            "CustomerMasterKeySpec": spec, "KeySpec": spec,
            "KeyUsage": USAGES.get(key.purpose, key.purpose.upper())}
        if key.purpose == "encrypt":
            answer["EncryptionAlgorithms"] = encryption_algorithms(key.spec)
        elif key.spec in SIGNING:
            answer["SigningAlgorithms"] = list(SIGNING[key.spec])
        return _audited(answer, key.name, found.version)

    return await on_key(call, "read", "read", work)  # type: ignore[no-any-return]


def _mac_algorithm(call: KmsCall, key: Key) -> str:
    algorithm = call.choice("MacAlgorithm", ("HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384",
                                             "HMAC_SHA_512"))
    if algorithm != MACS.get(key.spec):
        raise KmsRequestError(f"MacAlgorithm {algorithm} is not valid for this key; it "
                              f"supports {MACS.get(key.spec)}", "InvalidKeyUsageException")
    return str(algorithm)


@operation("GenerateMac", "mac")
async def generate_mac(call: KmsCall) -> dict[str, Any]:
    message = call.blob("Message", limit=MAX_PLAINTEXT)
    assert message is not None
    key = await _key_for(call, "mac")
    algorithm = _mac_algorithm(call, key)
    ops = call.services.operations

    def work(ctx: RequestContext) -> Any:
        done = guarded(key, lambda: ops.mac(ctx, key.name, message))
        return _audited({"Mac": b64(done.tag), "MacAlgorithm": algorithm,
                         "KeyId": call.names.key_arn(key.id)}, done.key, done.version)

    return await call.run("mac", key.name, work, permission="mac")  # type: ignore[no-any-return]


@operation("VerifyMac", "mac")
async def verify_mac(call: KmsCall) -> dict[str, Any]:
    message = call.blob("Message", limit=MAX_PLAINTEXT)
    tag = call.blob("Mac")
    assert message is not None and tag is not None
    key = await _key_for(call, "mac")
    algorithm = _mac_algorithm(call, key)
    ops = call.services.operations

    def work(ctx: RequestContext) -> Any:
        done = guarded(key, lambda: ops.verify_mac(ctx, key.name, message, tag, version=None))
        return _audited({"KeyId": call.names.key_arn(key.id), "MacValid": done.valid,
                         "MacAlgorithm": algorithm}, done.key, done.version)

    answer: dict[str, Any] = await call.run("mac", key.name, work, permission="mac")
    if not answer["MacValid"]:
        raise KmsRequestError("the MAC is not valid for this message and key",
                              "KMSInvalidMacException")
    return answer


# -- data key pairs ------------------------------------------------------------------------

_PAIRS: dict[str, Any] = {
    "RSA_2048": lambda: rsa.generate_private_key(65537, 2048),
    "RSA_3072": lambda: rsa.generate_private_key(65537, 3072),
    "RSA_4096": lambda: rsa.generate_private_key(65537, 4096),
    "ECC_NIST_P256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ECC_NIST_P384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ECC_NIST_P521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ECC_SECG_P256K1": lambda: ec.generate_private_key(ec.SECP256K1()),
}
"""Data key pairs are made here and handed out (the caller uses them), so any curve or
size the ``cryptography`` package makes is offered, not only keyquorum's key specs."""


async def _data_key_pair(call: KmsCall, *, with_plaintext: bool) -> dict[str, Any]:
    if call.body.get("Recipient"):
        raise unsupported("Recipient (Nitro Enclaves attestation) is not supported")
    pair_spec = call.choice("KeyPairSpec", (*_PAIRS, "SM2", "ECC_NIST_EDWARDS25519"))
    if pair_spec not in _PAIRS:
        raise unsupported(f"KeyPairSpec {pair_spec} is not supported; use one of "
                          + ", ".join(_PAIRS))
    context = call.context()
    target = await call.target()
    key = target.require(str(call.body.get("KeyId")))
    require_usage(key, "encrypt", call.action)
    matches_algorithm(key, "SYMMETRIC_DEFAULT", call.action)
    runner, ops = call.services.runner, call.services.operations

    def work(ctx: RequestContext) -> Any:
        runner.authorize(ctx, "datakey", key.name, context=context)
        private = _PAIRS[pair_spec]()
        private_der = private.private_bytes(serialization.Encoding.DER,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
        public_der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        done = guarded(key, lambda: ops.encrypt(ctx, key.name, private_der, context))
        answer = {"PrivateKeyCiphertextBlob": blob_of(done.ciphertext),
                  "PublicKey": b64(public_der), "KeyId": call.names.key_arn(key.id),
                  "KeyPairSpec": pair_spec}
        if with_plaintext:
            answer["PrivateKeyPlaintext"] = b64(private_der)
        return _audited(answer, done.key, done.version)

    return await call.run("datakey", key.name, work, permission=None)  # type: ignore[no-any-return]


@operation("GenerateDataKeyPair", "datakey")
async def generate_data_key_pair(call: KmsCall) -> dict[str, Any]:
    return await _data_key_pair(call, with_plaintext=True)


@operation("GenerateDataKeyPairWithoutPlaintext", "datakey")
async def generate_data_key_pair_without_plaintext(call: KmsCall) -> dict[str, Any]:
    return await _data_key_pair(call, with_plaintext=False)
