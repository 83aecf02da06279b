"""The PKCS#11 seal: an AES-256 key that never leaves an HSM wraps the root key.

Configured by the module (the vendor's PKCS#11 library), a token label, a key
label, and where the PIN is (``pin_env`` names an environment variable,
``pin_file`` a file): the PIN itself is never stored. At add, the key is found
by label or generated in the token as a persistent, sensitive, non-extractable
AES-256 key usable only to encrypt and decrypt; a key found by label that could
leave the token is refused. The root key is wrapped with CKM_AES_GCM inside the
HSM (random 96-bit IV from the OS CSPRNG, the seal's id and kind as AAD).

python-pkcs11 is optional (``pip install keyquorum[hsm]``) and imported on first
use. Every PKCS#11 call here runs under one lock: seals are used rarely, and a
library reload (to see a token created after start) must not race a session.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from keyquorum.crypto.random import random_bytes
from keyquorum.errors import InvalidRequest, SealUnavailable
from keyquorum.seal.entry import PKCS11, SealEntry, wrap_aad

_LOCK = threading.Lock()
_IV_SIZE = 12
_MAX_LABEL = 32  # CK_TOKEN_INFO's label field


def _text(body: dict[str, Any], name: str, limit: int = 4096) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidRequest(f"pkcs11: {name} must be a non-empty string")
    return value


def parse_params(body: dict[str, Any]) -> dict[str, Any]:
    """The public parameters of a new PKCS#11 seal, checked (nothing is contacted yet).

    Which fields a request may carry (and that a PIN is never one of them) is the
    request model's rule (``api.bodies_sys.AddPkcs11Seal``); the values are checked here.
    """
    params = {"module": _text(body, "module"),
              "token_label": _text(body, "token_label", _MAX_LABEL),
              "key_label": _text(body, "key_label", 128)}
    if not os.path.isabs(params["module"]):
        raise InvalidRequest("pkcs11: module must be an absolute path")
    if ("pin_env" in body) == ("pin_file" in body):
        raise InvalidRequest("pkcs11: give exactly one of pin_env (a variable name) or "
                             "pin_file (a path)")
    if "pin_env" in body:
        params["pin_env"] = _text(body, "pin_env", 128)
    else:
        params["pin_file"] = _text(body, "pin_file")
        if not os.path.isabs(params["pin_file"]):
            raise InvalidRequest("pkcs11: pin_file must be an absolute path")
    params["mechanism"] = "CKM_AES_GCM"
    return params


def _unavailable(message: str, reason: str) -> SealUnavailable:
    return SealUnavailable(f"pkcs11: {message}", reason=reason)


def _pin(params: dict[str, Any]) -> str:
    if "pin_env" in params:
        pin = os.environ.get(params["pin_env"])
        if not pin:
            raise _unavailable(f"the PIN variable {params['pin_env']} is not set", "pin_missing")
        return pin
    try:
        pin = Path(params["pin_file"]).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise _unavailable(f"cannot read the PIN file {params['pin_file']}",
                           "pin_missing") from None
    if not pin:
        raise _unavailable(f"the PIN file {params['pin_file']} is empty", "pin_missing")
    return pin


def _library() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise _unavailable("python-pkcs11 is not installed (pip install 'keyquorum[hsm]')",
                           "library_missing") from None
    return pkcs11


def _token(pkcs11: Any, params: dict[str, Any]) -> Any:
    module = params["module"]
    if not os.path.isfile(module):
        raise _unavailable(f"no PKCS#11 module at {module}", "module_missing")
    try:
        lib = pkcs11.lib(module)
    except pkcs11.PKCS11Error:
        raise _unavailable(f"{module} did not load as a PKCS#11 module",
                           "module_missing") from None
    try:
        return lib.get_token(token_label=params["token_label"])
    except pkcs11.PKCS11Error:
        # A token created (or deleted) after this process loaded the module is seen only
        # after a reload; SoftHSM answers a stale slot with CKR_GENERAL_ERROR.
        lib.reinitialize()
    try:
        return lib.get_token(token_label=params["token_label"])
    except pkcs11.exceptions.NoSuchToken:
        raise _unavailable(f"no token labelled {params['token_label']!r}",
                           "token_not_found") from None
    except pkcs11.PKCS11Error as exc:
        raise _unavailable(f"the module failed to list tokens ({type(exc).__name__})",
                           "hsm_error") from None


def _session(pkcs11: Any, params: dict[str, Any], *, rw: bool) -> Any:
    token = _token(pkcs11, params)
    try:
        return token.open(rw=rw, user_pin=_pin(params))
    except (pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinInvalid,
            pkcs11.exceptions.PinLenRange):
        raise _unavailable(f"the PIN was refused by token {params['token_label']!r}",
                           "pin_incorrect") from None
    except pkcs11.exceptions.PinLocked:
        raise _unavailable(f"the PIN of token {params['token_label']!r} is locked",
                           "pin_locked") from None


def _find_or_generate(pkcs11: Any, session: Any, label: str) -> Any:
    from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass

    try:
        key = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=label)
    except pkcs11.exceptions.NoSuchKey:
        # Persistent, sensitive, never extractable, good only to encrypt and decrypt:
        # the root key's wrapper must stay in the HSM.
        return session.generate_key(
            KeyType.AES, 256, label=label, store=True,
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
            template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                      Attribute.PRIVATE: True})
    except pkcs11.exceptions.MultipleObjectsReturned:
        raise _unavailable(f"several AES keys are labelled {label!r}", "key_ambiguous") from None
    if not key[Attribute.SENSITIVE] or key[Attribute.EXTRACTABLE] or \
            key[Attribute.VALUE_LEN] != 32:
        raise _unavailable(f"the key {label!r} must be a sensitive, non-extractable AES-256 key",
                           "key_unsuitable")
    return key


def _gcm(iv: bytes, aad: bytes) -> dict[str, Any]:
    from pkcs11 import Mechanism
    from pkcs11.mechanisms import GCMParams

    return {"mechanism": Mechanism.AES_GCM, "mechanism_param": GCMParams(iv, aad)}


def create(root_key: bytes, seal_id: str, params: dict[str, Any], now: float) -> SealEntry:
    """Find or generate the key in the token and wrap ``root_key`` with it, in the HSM."""
    pkcs11 = _library()
    aad = wrap_aad(PKCS11, seal_id)
    with _LOCK:
        try:
            with _session(pkcs11, params, rw=True) as session:
                key = _find_or_generate(pkcs11, session, params["key_label"])
                iv = random_bytes(_IV_SIZE)
                wrapped = iv + bytes(key.encrypt(root_key, **_gcm(iv, aad)))
                check = bytes(key.decrypt(wrapped[_IV_SIZE:], **_gcm(iv, aad)))
        except pkcs11.PKCS11Error as exc:
            raise _unavailable(f"the token failed ({type(exc).__name__})", "hsm_error") from None
    if check != root_key:  # the HSM must give back what it wrapped before we rely on it
        raise _unavailable("the token did not unwrap what it wrapped", "hsm_error")
    return SealEntry(PKCS11, seal_id, dict(params), wrapped, now)


def open_root(entry: SealEntry) -> bytes:
    """The root key unwrapped inside the HSM, or ``SealUnavailable`` saying what failed."""
    pkcs11 = _library()
    params = entry.params
    iv, body = entry.wrapped_root[:_IV_SIZE], entry.wrapped_root[_IV_SIZE:]
    with _LOCK:
        try:
            with _session(pkcs11, params, rw=False) as session:
                from pkcs11 import KeyType, ObjectClass

                try:
                    key = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES,
                                          label=params["key_label"])
                except pkcs11.exceptions.NoSuchKey:
                    raise _unavailable(f"no key labelled {params['key_label']!r} in the token",
                                       "key_not_found") from None
                try:
                    return bytes(key.decrypt(body, **_gcm(iv, entry.aad)))
                except pkcs11.PKCS11Error:
                    raise _unavailable("the token's key does not open this seal's copy",
                                       "unwrap_failed") from None
        except pkcs11.PKCS11Error as exc:
            raise _unavailable(f"the token failed ({type(exc).__name__})", "hsm_error") from None
