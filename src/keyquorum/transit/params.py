"""The request fields each transit endpoint knows, for Vault's warning about the rest.

Vault answers a request with fields its endpoint does not define, and says so in
``warnings`` ("Endpoint ignored these unrecognized parameters: [...]"); keyquorum
does the same, so a misspelt field (``plaintxt``, ``asociated_data``) is never
ignored without a word. Fields Vault defines and keyquorum cannot honour are
known here and refused by the endpoints themselves.
"""

from __future__ import annotations

from typing import Any

_KEY = {"name", "approval_id"}
_SIGN = {"input", "key_version", "hash_algorithm", "algorithm", "context", "prehashed",
         "signature_algorithm", "marshaling_algorithm", "salt_length", "batch_input",
         "reference"}
_IMPORT = {"ciphertext", "hash_function", "type", "exportable", "auto_rotate_period",
           "allow_rotation", "derived", "context", "convergent_encryption",
           "allow_plaintext_backup", "public_key", "version", "managed_key_name",
           "managed_key_id"}
KNOWN: dict[tuple[str, str], set[str]] = {
    ("keys", ""): {"type", "exportable", "auto_rotate_period", "key_size", "derived",
                   "convergent_encryption", "allow_plaintext_backup", "managed_key_name",
                   "managed_key_id", "context", "list"},
    ("keys", "config"): {"min_decryption_version", "min_encryption_version",
                         "deletion_allowed", "exportable", "allow_plaintext_backup",
                         "auto_rotate_period"},
    ("keys", "rotate"): {"managed_key_name", "managed_key_id"},
    ("keys", "trim"): {"min_available_version"},
    ("keys", "import"): _IMPORT,
    ("keys", "import_version"): _IMPORT,
    ("encrypt", ""): {"plaintext", "context", "key_version", "nonce", "reference",
                      "batch_input", "type", "convergent_encryption", "derived",
                      "partial_failure_response_code", "associated_data"},
    ("decrypt", ""): {"ciphertext", "context", "nonce", "reference", "batch_input",
                      "partial_failure_response_code", "associated_data"},
    ("rewrap", ""): {"ciphertext", "context", "key_version", "nonce", "reference",
                     "batch_input", "associated_data"},
    ("datakey", ""): {"context", "nonce", "bits", "associated_data", "key_version"},
    ("random", ""): {"bytes", "format", "source"},
    ("hash", ""): {"input", "algorithm", "format"},
    ("hmac", ""): {"input", "key_version", "algorithm", "hash_algorithm", "batch_input",
                   "reference"},
    ("sign", ""): _SIGN,
    ("verify", ""): _SIGN | {"signature", "hmac", "cmac"},
    ("export", ""): set(),
    ("wrapping_key", ""): set(),
}


def unrecognized(segments: list[str], body: dict[str, Any]) -> str | None:
    """Vault's warning for the fields of ``body`` this endpoint does not define, if any."""
    first = segments[0] if segments else ""
    action = segments[2] if first == "keys" and len(segments) > 2 else ""
    known = KNOWN.get((first, action))
    if known is None:
        return None
    unknown = sorted(set(body) - known - _KEY)
    if not unknown:
        return None
    return f"Endpoint ignored these unrecognized parameters: [{' '.join(unknown)}]"
