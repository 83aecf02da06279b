"""``key_version`` on calls that protect new data (encrypt, rewrap, datakey, sign, hmac):
the latest version is accepted, an older one refused with the reason (only the primary
version protects: keyquorum's state machine, NIST SP 800-57), a newer one in Vault's
words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from inprocess_server import InProcessServer
from transit_support import Vault, b64, errors


@pytest.fixture(scope="module")
def root(shared_inprocess: InProcessServer) -> Iterator[Vault]:
    with shared_inprocess.anonymous() as http:
        yield Vault(http, shared_inprocess.root_token)


@pytest.mark.parametrize(("key_type", "path", "body"), [
    ("aes256-gcm96", "encrypt/{}", {"plaintext": b64(b"x")}),
    ("aes256-gcm96", "datakey/plaintext/{}", {}),
    ("ecdsa-p256", "sign/{}", {"input": b64(b"x")}),
    ("hmac", "hmac/{}", {"input": b64(b"x")}),
])
def test_only_the_latest_version_protects(root: Vault, key_type: str, path: str,
                                          body: dict[str, object]) -> None:
    name = f"kv-{key_type}-{path.split('/')[0]}"
    root.data(root.write(f"keys/{name}", {"type": key_type}))
    root.data(root.write(f"keys/{name}/rotate"))
    target = path.format(name)
    assert root.data(root.write(target, {**body, "key_version": 2}))
    older = errors(root.write(target, {**body, "key_version": 1}), 400)[0]
    assert "key_version 1 cannot be used" in older
    assert "only the latest version (2) protects new data" in older
    assert "NIST SP 800-57" in older
    newer = errors(root.write(target, {**body, "key_version": 3}), 400)[0]
    assert newer.startswith("requested version for ") and "higher than the latest" in newer


def test_rewrap_to_an_older_version_is_refused_and_batches_refuse_alone(root: Vault) -> None:
    root.data(root.write("keys/kv-wrap"))
    text = root.data(root.write("encrypt/kv-wrap", {"plaintext": b64(b"x")}))["ciphertext"]
    root.data(root.write("keys/kv-wrap/rotate"))
    answer = root.write("rewrap/kv-wrap", {"batch_input": [
        {"ciphertext": text, "key_version": 1, "reference": "old"},
        {"ciphertext": text, "key_version": 2, "reference": "new"}]})
    results = answer.json()["data"]["batch_results"]
    assert "only the latest version (2)" in results[0]["error"]
    assert results[1]["ciphertext"].startswith("vault:v2:")
