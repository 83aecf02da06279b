"""Cryptographic operations on managed keys: one item at a time; the pipeline batches.

Each verb takes domain values (a key name, bytes, a context map) and returns a
small result value naming the key and version it used, so every item can be
audited exactly; shaping answers is the API's job. Authorization of the key a
request names happens in the pipeline before the verb is called. A verb
authorizes only what it discovers itself: the key a ciphertext's header names
(decrypt, reencrypt), the destination of a reencrypt, and the
``unprotect-compromised`` override.

**Blocking.** The pipeline first calls a verb on the event loop with
``may_block=False``. Whenever the verb would have to wait (a key not in the
cache, a version not yet unwrapped, a usage-counter block to reserve, a
usage-limit rotation, or a slow asymmetric private-key operation) it raises
``WouldBlock`` *before any side effect*, and the pipeline runs the item again
in a worker thread with ``may_block=True``. The common case (a cached AES key)
never leaves the loop; nothing slow ever runs on it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import lru_cache

from keyquorum import b64
from keyquorum.auth.identity import Identity
from keyquorum.crypto.errors import InvalidCiphertext as CryptoInvalid
from keyquorum.crypto.random import random_bytes
from keyquorum.errors import (
    Conflict,
    Forbidden,
    InvalidCiphertext,
    KeyquorumError,
    KeyStateError,
    NotFound,
    TooLarge,
)
from keyquorum.keys.ciphertext import (
    CiphertextHeader,
    open_with,
    parse_ciphertext,
    seal_with,
)
from keyquorum.keys.specs import get_spec
from keyquorum.keys.states import Use, check_use, is_compromised, is_destroyed
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.keycache import LoadedKey
from keyquorum.service.lifecycle import KeyLifecycle

# Private-key operations of these families take milliseconds (RSA-4096 signing ~15 ms):
# always off the event loop.
_SLOW_FAMILIES = frozenset({"sign", "kem"})


_PROTECT_TRIES = 10
"""Passes ``_protect_version`` makes at a usage-limited key before answering 409."""


class WouldBlock(Exception):
    """Raised with ``may_block=False`` before any side effect: run me in a thread."""


def name_subject(exc: KeyquorumError, key: str, version: int | None) -> None:
    """Say which key and version a refusal concerns, for its audit record only.

    The key a ciphertext names is discovered here, after the pipeline could know
    it; the record must still name it (who tried to decrypt what), while the
    answer to the caller must not name a key the caller may not use.
    """
    exc.audit_subject = (key, version)


def subject_of(exc: BaseException) -> tuple[str | None, int | None] | None:
    return exc.audit_subject if isinstance(exc, KeyquorumError) else None


@dataclass(frozen=True)
class Used:
    """What every result carries for the audit record: the key and version it used."""

    key: str | None
    version: int | None


@dataclass(frozen=True)
class Encrypted(Used):
    ciphertext: str = ""


@dataclass(frozen=True)
class Decrypted(Used):
    plaintext: bytes = field(default=b"", repr=False)
    override: bool = False


@dataclass(frozen=True)
class Reencrypted(Used):
    ciphertext: str = ""
    override: bool = False


@dataclass(frozen=True)
class DataKey(Used):
    ciphertext: str = ""
    plaintext: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Signed(Used):
    signature: bytes = b""


@dataclass(frozen=True)
class Verified(Used):
    valid: bool = False


@dataclass(frozen=True)
class Tagged(Used):
    tag: bytes = b""


@dataclass(frozen=True)
class Decapsulated(Used):
    shared_secret: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class PublicKey(Used):
    pem: str = ""
    spec: str = ""


@dataclass(frozen=True)
class RandomData(Used):
    data: bytes = field(default=b"", repr=False)


def _b64(data: bytes) -> str:
    return b64.encode_standard(data)


@lru_cache(maxsize=65536)
def _key_uuid(key_id: str) -> uuid.UUID:
    """Parsing a key id per request is measurable on the hot path; ids never change."""
    return uuid.UUID(key_id)


@lru_cache(maxsize=65536)
def _key_id_text(key_id: uuid.UUID) -> str:
    return str(key_id)


class CryptoOperations:
    def __init__(self, core: Core, lifecycle: KeyLifecycle) -> None:
        self.core = core
        self.lifecycle = lifecycle

    # -- shared steps ----------------------------------------------------------------------

    def _key_for(self, operation: str, name: str, purposes: tuple[str, ...],
                 may_block: bool) -> LoadedKey:
        self.core.barrier()
        loaded = self.core.keys.cached(name)
        if loaded is None:  # reading it from storage is not for the event loop
            if not may_block:
                raise WouldBlock()
            loaded = self.core.keys.get(name)
        if loaded.key.purpose not in purposes:
            raise Conflict(f"key {name} has purpose {loaded.key.purpose}; "
                           f"{operation} needs a key for {' or '.join(purposes)}")
        return loaded

    def _handle(self, loaded: LoadedKey, version: int, may_block: bool) -> object:
        if not may_block and version not in loaded.handles:
            raise WouldBlock()
        return self.core.keys.handle(loaded, version)

    def _check_size(self, data: bytes, field_name: str) -> None:
        if len(data) > self.core.settings.max_item_bytes:
            raise TooLarge(f"{field_name} exceeds {self.core.settings.max_item_bytes} bytes")

    def _slow(self, loaded: LoadedKey, may_block: bool) -> None:
        if not may_block and get_spec(loaded.key.spec).family in _SLOW_FAMILIES:
            raise WouldBlock()

    def _protect_version(self, ctx: RequestContext, loaded: LoadedKey,
                         may_block: bool) -> tuple[LoadedKey, int]:
        """The primary version, counted; rotates first or after when the usage limit is hit.

        With several nodes (or workers) each counting in blocks of its own, a version can
        be spent by the others between this process's rotation and its next count: each
        pass then finds the key rotated already and counts on the new primary. Each pass
        rotates only a version this process saw spent, so more passes cost reads, not
        versions; three were too few on a loaded machine (CI: 409 key_state with three
        nodes, usage limit 20, blocks of 4)."""
        for _ in range(_PROTECT_TRIES):
            key = loaded.key
            version = key.primary_version
            stored = key.version(version)
            if stored is None:
                raise KeyStateError(f"the primary version {version} has no record")
            check_use(key_state=key.state, version_state=stored.state,
                      use=Use.PROTECT, is_primary=True, version=version,
                      min_decrypt_version=key.min_decrypt_version)
            limit = key.usage_limit or loaded.spec.default_usage_limit
            if not may_block:  # the event loop: counted here in one step, or not at all
                if version not in loaded.handles:  # _handle, inline (per item)
                    raise WouldBlock()
                self.core.keys.handle(loaded, version)  # its use check
                if self.core.keys.count_protect_on_loop(loaded, version, limit) is None:
                    raise WouldBlock()  # storage write or rotation ahead: not on the loop
                return loaded, version
            self._handle(loaded, version, may_block)
            if self.core.keys.wants_spare(loaded, version):
                self.core.keys.reserve_spare_soon(loaded, version)  # the next block, ahead
            count = self.core.keys.count_protect(loaded, version)
            if limit is None or count < limit:
                return loaded, version
            if count == limit:  # the last allowed use: serve it, then move on
                self._rotate_spent(ctx, key.name, version)
                return loaded, version
            self._rotate_spent(ctx, key.name, version)
            loaded = self.core.keys.get(key.name)
        raise KeyStateError("the key's usage limit was reached and rotation did not complete")

    def _rotate_spent(self, ctx: RequestContext, name: str, version: int) -> None:
        rotation_ctx = RequestContext(request_id=ctx.request_id, client=ctx.client,
                                      identity=ctx.identity)
        self.lifecycle.rotate_for_usage(rotation_ctx, name, version)

    def _version_for_use(self, loaded: LoadedKey, version: int | None, *,
                         allow_compromised: bool = False) -> int:
        key = loaded.key
        number = version or key.primary_version
        stored = key.version(number)
        if stored is None:
            raise NotFound(f"key {key.name} has no version {number}")
        check_use(key_state=key.state, version_state=stored.state, use=Use.UNPROTECT,
                  is_primary=number == key.primary_version, version=number,
                  min_decrypt_version=key.min_decrypt_version,
                  allow_compromised=allow_compromised)
        return number

    def _used(self, loaded: LoadedKey, version: int) -> None:
        self.core.keys.mark_used(loaded, version, self.core.clock.now())

    def _authorize(self, identity: Identity, operation: str, name: str, client: str | None,
                   context: dict[str, str] | None) -> None:
        self.core.authorizer.authorize(identity, operation, name, client=client,
                                       context=context)

    # -- encryption --------------------------------------------------------------------------

    def encrypt(self, ctx: RequestContext, name: str, plaintext: bytes,
                context: dict[str, str] | None, *, may_block: bool = True) -> Encrypted:
        if len(plaintext) > self.core.settings.max_item_bytes:
            self._check_size(plaintext, "plaintext")
        loaded = self._key_for("encrypt", name, ("encrypt",), may_block)
        text, version = self._seal(ctx, loaded, plaintext, context, may_block)
        return Encrypted(loaded.key.name, version, ciphertext=text)

    def _seal(self, ctx: RequestContext, loaded: LoadedKey, plaintext: bytes,
              context: dict[str, str] | None, may_block: bool) -> tuple[str, int]:
        if loaded.spec.family != "aead":  # before any use is counted
            raise Conflict(f"key {loaded.key.name} is an RSA encryption key: clients encrypt "
                           "to its public key (RSAES-OAEP) and the server decrypts with "
                           "decrypt-oaep; kq1 ciphertexts need a symmetric key")
        loaded, version = self._protect_version(ctx, loaded, may_block)
        # _protect_version loaded (and use-checked) this version's key object already.
        handle = loaded.handles.get(version) or self.core.keys.handle(loaded, version)
        text = seal_with(handle, _key_uuid(loaded.key.id), version, plaintext, context)
        loaded.used_at[version] = self.core.clock.now()  # _used, inline (per item)
        return text, version

    def _open(self, ctx: RequestContext, operation: str, text: str,
              context: dict[str, str] | None, *, expected_key: str | None,
              allow_compromised: bool, may_block: bool) -> tuple[bytes, LoadedKey, int, bool]:
        """Authenticate and decrypt ``text``; the plaintext, key, version and whether the
        compromised-version override was used."""
        self.core.barrier()
        try:
            header, header_bytes, body = parse_ciphertext(text)
        except CryptoInvalid as exc:
            raise InvalidCiphertext() from exc
        key_id = _key_id_text(header.key_id)
        loaded = self.core.keys.cached_by_id(key_id)
        if loaded is None:
            if not may_block:
                raise WouldBlock()
            try:
                loaded = self.core.keys.get_by_id(key_id)
            except NotFound as exc:
                raise InvalidCiphertext() from exc
        name, number = loaded.key.name, header.key_version
        try:
            return self._open_loaded(ctx, operation, loaded, header, header_bytes, body,
                                     context, expected_key=expected_key,
                                     allow_compromised=allow_compromised, may_block=may_block)
        except KeyquorumError as exc:
            name_subject(exc, name, number)
            raise

    def _open_loaded(self, ctx: RequestContext, operation: str, loaded: LoadedKey,
                     header: CiphertextHeader, header_bytes: bytes, body: bytes,
                     context: dict[str, str] | None, *, expected_key: str | None,
                     allow_compromised: bool,
                     may_block: bool) -> tuple[bytes, LoadedKey, int, bool]:
        # Run for every decrypted item: the steps of _authorize, _version_for_use,
        # _handle and _used are written out here, a Python call each saved.
        key = loaded.key
        name = key.name
        number = header.key_version
        identity = ctx.identity
        assert identity is not None
        if expected_key is not None and name != expected_key:
            raise InvalidCiphertext("the ciphertext belongs to another key")
        try:
            self.core.authorizer.authorize(identity, operation, name, client=ctx.client,
                                           context=context)
        except Forbidden as exc:
            # Do not map key ids to names for a caller who may not use the key; the
            # reason (which of the caller's own rules decided) stays.
            reason = exc.message.partition(name)[2] if name in exc.message else ""
            raise Forbidden(f"token may not {operation} with the key this ciphertext "
                            f"names{reason}") from exc
        if header.algorithm != key.spec:
            raise InvalidCiphertext()
        stored = key.version(number)
        if stored is None:  # FORMAT.md 1.5: one vague answer for every bad ciphertext
            raise InvalidCiphertext()
        check_use(key_state=key.state, version_state=stored.state, use=Use.UNPROTECT,
                  is_primary=number == key.primary_version, version=number,
                  min_decrypt_version=key.min_decrypt_version,
                  allow_compromised=allow_compromised)
        override = allow_compromised and is_compromised(stored.state)
        if override:
            # The override is its own permission: holding decrypt is not enough to read
            # data under a key everyone should assume the attacker holds too.
            self._authorize(identity, "unprotect-compromised", name, ctx.client, context)
        if not may_block and number not in loaded.handles:
            raise WouldBlock()
        handle = self.core.keys.handle(loaded, number)
        try:
            plaintext = open_with(handle, header, header_bytes, body, context)  # type: ignore[arg-type]
        except CryptoInvalid as exc:
            raise InvalidCiphertext() from exc
        loaded.used_at[number] = self.core.clock.now()
        return plaintext, loaded, number, override

    def decrypt(self, ctx: RequestContext, ciphertext: str, context: dict[str, str] | None,
                *, expected_key: str | None = None, allow_compromised: bool = False,
                may_block: bool = True) -> Decrypted:
        plaintext, loaded, version, override = self._open(
            ctx, "decrypt", ciphertext, context, expected_key=expected_key,
            allow_compromised=allow_compromised, may_block=may_block)
        return Decrypted(loaded.key.name, version, plaintext=plaintext, override=override)

    def reencrypt(self, ctx: RequestContext, ciphertext: str, context: dict[str, str] | None,
                  *, destination_key: str | None, destination_context: dict[str, str] | None,
                  allow_compromised: bool = False, may_block: bool = True) -> Reencrypted:
        """Move a ciphertext to the primary version of its key, or to another key or context.

        Moving it unchanged (same key, same context) reveals nothing: ``reencrypt`` on
        the source is enough. Anything else is a way to read the data (re-encrypt to a
        key or context the caller can decrypt), so it needs ``decrypt`` on the source
        too, and ``encrypt`` on the destination, as AWS KMS splits ReEncryptFrom/To.
        """
        if not may_block:  # two keys, maybe a rotation: simplest to run it off the loop
            raise WouldBlock()
        plaintext, loaded, version, override = self._open(
            ctx, "reencrypt", ciphertext, context, expected_key=None,
            allow_compromised=allow_compromised, may_block=True)
        source = loaded.key.name
        destination = destination_key or source
        assert ctx.identity is not None
        if destination != source or destination_context != context:
            try:
                self._authorize(ctx.identity, "decrypt", source, ctx.client, context)
            except Forbidden as exc:
                name_subject(exc, source, version)
                raise Forbidden("reencrypt to another key or context needs decrypt on the "
                                "source key") from exc
            self._authorize(ctx.identity, "encrypt", destination, ctx.client,
                            destination_context)
        target = self._key_for("reencrypt", destination, ("encrypt",), True)
        text, new_version = self._seal(ctx, target, plaintext, destination_context, True)
        return Reencrypted(destination, new_version, ciphertext=text, override=override)

    def datakey(self, ctx: RequestContext, name: str, bits: int, context: dict[str, str] | None,
                *, with_plaintext: bool, may_block: bool = True) -> DataKey:
        loaded = self._key_for("datakey", name, ("encrypt",), may_block)
        data_key = random_bytes(bits // 8)
        text, version = self._seal(ctx, loaded, data_key, context, may_block)
        return DataKey(loaded.key.name, version, ciphertext=text,
                       plaintext=data_key if with_plaintext else None)

    # -- RSA encryption keys (RSAES-OAEP; raw blocks, see crypto.rsa_oaep) ----------------------

    def encrypt_oaep(self, ctx: RequestContext, name: str, plaintext: bytes,
                     hash_name: str | None, *, may_block: bool = True) -> Encrypted:
        """What a client does with the public key, served for callers (AWS KMS Encrypt)
        that ask the server; counted and audited as a protect operation."""
        loaded = self._key_for("encrypt-oaep", name, ("encrypt",), may_block)
        self._require_oaep(loaded)
        loaded, version = self._protect_version(ctx, loaded, may_block)
        block = self.core.keys.handle(loaded, version).encrypt(plaintext, hash_name)
        self._used(loaded, version)
        return Encrypted(loaded.key.name, version, ciphertext=_b64(block))

    def decrypt_oaep(self, ctx: RequestContext, name: str, ciphertext: bytes,
                     hash_name: str | None, *, version: int | None,
                     may_block: bool = True) -> Decrypted:
        loaded = self._key_for("decrypt-oaep", name, ("encrypt",), may_block)
        self._require_oaep(loaded)
        self._slow(loaded, may_block)
        number = self._version_for_use(loaded, version)
        try:
            plaintext = self.core.keys.handle(loaded, number).decrypt(ciphertext, hash_name)
        except CryptoInvalid as exc:
            raise InvalidCiphertext("ciphertext is invalid for this key and version") from exc
        self._used(loaded, number)
        return Decrypted(loaded.key.name, number, plaintext=plaintext)

    @staticmethod
    def _require_oaep(loaded: LoadedKey) -> None:
        if get_spec(loaded.key.spec).family == "aead":
            raise Conflict(f"key {loaded.key.name} is symmetric: use encrypt and decrypt "
                           "(kq1 ciphertexts); encrypt-oaep and decrypt-oaep are for RSA "
                           "encryption keys")

    # -- signatures, MACs, KEM -----------------------------------------------------------------

    def sign(self, ctx: RequestContext, name: str, *, message: bytes | None,
             digest: bytes | None, hash_name: str | None, scheme: str | None = None,
             may_block: bool = True) -> Signed:
        """``scheme`` is the RSA padding (``pss`` when None); other keys refuse one."""
        if message is not None:
            self._check_size(message, "message")
        loaded = self._key_for("sign", name, ("sign",), may_block)
        self._slow(loaded, may_block)
        loaded, version = self._protect_version(ctx, loaded, may_block)
        handle = self.core.keys.handle(loaded, version)
        signature = handle.sign(message=message, digest=digest, hash_name=hash_name,
                                scheme=scheme)
        self._used(loaded, version)
        return Signed(loaded.key.name, version, signature=signature)

    def verify(self, ctx: RequestContext, name: str, signature: bytes, *,
               message: bytes | None, digest: bytes | None, hash_name: str | None,
               version: int | None, scheme: str | None = None,
               may_block: bool = True) -> Verified:
        loaded = self._key_for("verify", name, ("sign",), may_block)
        number = self._version_for_use(loaded, version)
        handle = self._handle(loaded, number, may_block)
        valid = handle.verify(signature, message=message,  # type: ignore[attr-defined]
                              digest=digest, hash_name=hash_name, scheme=scheme)
        self._used(loaded, number)
        return Verified(name, number, valid=bool(valid))

    def mac(self, ctx: RequestContext, name: str, message: bytes, *,
            may_block: bool = True) -> Tagged:
        self._check_size(message, "message")
        loaded = self._key_for("mac", name, ("mac",), may_block)
        loaded, version = self._protect_version(ctx, loaded, may_block)
        tag = self.core.keys.handle(loaded, version).mac(message)
        self._used(loaded, version)
        return Tagged(name, version, tag=tag)

    def verify_mac(self, ctx: RequestContext, name: str, message: bytes, tag: bytes, *,
                   version: int | None, may_block: bool = True) -> Verified:
        loaded = self._key_for("mac", name, ("mac",), may_block)
        number = self._version_for_use(loaded, version)
        valid = self._handle(loaded, number, may_block).verify(  # type: ignore[attr-defined]
            message, tag)
        self._used(loaded, number)
        return Verified(name, number, valid=bool(valid))

    def decapsulate(self, ctx: RequestContext, name: str, encapsulation: bytes, *,
                    version: int | None, may_block: bool = True) -> Decapsulated:
        loaded = self._key_for("decapsulate", name, ("kem", "agree"), may_block)
        self._slow(loaded, may_block)
        number = self._version_for_use(loaded, version)
        try:
            secret = self.core.keys.handle(loaded, number).decapsulate(encapsulation)
        except CryptoInvalid as exc:
            raise InvalidCiphertext("the encapsulation is invalid for this key") from exc
        self._used(loaded, number)
        return Decapsulated(name, number, shared_secret=secret)

    def public_key(self, name: str, version: int | None) -> PublicKey:
        self.core.barrier()
        loaded = self.core.keys.get(name)
        if not get_spec(loaded.key.spec).asymmetric:
            raise Conflict(f"key {name} is symmetric and has no public key")
        number = version or loaded.key.primary_version
        stored = loaded.key.version(number)
        if stored is None:
            raise NotFound(f"key {name} has no version {number}")
        if stored.public_key is None or is_destroyed(stored.state):
            raise KeyStateError(f"version {number} is {stored.state.value}")
        return PublicKey(name, number, pem=stored.public_key, spec=loaded.key.spec)

    def random(self, count: int) -> RandomData:
        self.core.barrier()
        return RandomData(None, None, data=random_bytes(count))
