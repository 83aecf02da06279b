"""Real HSM and cloud KMS stand-ins for seal set tests: SoftHSM2 tokens and a moto server.

SoftHSM2 comes from Debian's packages (``scripts/test`` installs it); its tokens
live in a directory of this test process's own (``SOFTHSM2_CONF``), set once per
process because a loaded PKCS#11 module keeps the configuration it started with.
Server processes started by the tests inherit the same environment.

The moto server runs as a subprocess on a free port with fake credentials in
the environment; boto3 in the tests and in the keyquorum servers talks to it
through ``endpoint_url``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kq_support import free_port

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "5678"  # test tokens only


@dataclass(frozen=True)
class SoftHsm:
    """A SoftHSM2 token directory; ``token()`` makes a fresh token with a PIN."""

    conf: Path

    def token(self, pin: str = "1234") -> str:
        label = f"kq-{uuid.uuid4().hex[:12]}"
        self._util("--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", pin)
        return label

    def delete_token(self, label: str) -> None:
        self._util("--delete-token", "--token", label)

    def _util(self, *args: str) -> None:
        subprocess.run(["softhsm2-util", *args], check=True, capture_output=True,
                       env={**os.environ, "SOFTHSM2_CONF": str(self.conf)})


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    if not (Path(SOFTHSM_MODULE).exists() and shutil.which("softhsm2-util")):
        pytest.fail("SoftHSM2 is missing: run scripts/test (it installs Debian's softhsm2)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # for this process's PKCS#11 and its servers
    return SoftHsm(conf)


@dataclass(frozen=True)
class MotoKms:
    endpoint_url: str
    region: str = "us-east-1"

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("kms", region_name=self.region, endpoint_url=self.endpoint_url)

    def create_key(self) -> str:
        return str(self.client().create_key()["KeyMetadata"]["KeyId"])

    def params(self, key_id: str) -> dict[str, str]:
        return {"key_id": key_id, "region": self.region, "endpoint_url": self.endpoint_url}


@pytest.fixture(scope="session")
def moto_kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoKms]:
    # Fake credentials, no instance metadata lookups; inherited by the servers started later.
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_EC2_METADATA_DISABLED": "true"})
    os.environ.pop("AWS_PROFILE", None)
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1.0)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not start; see moto.log") from None
                time.sleep(0.1)
        yield MotoKms(url)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


PIN_PREFIX = "KEYQUORUM_HSM_PIN"  # the default pkcs11_pin_env_prefix: PIN variables start so


def seal_trust_config(kms: MotoKms | None = None) -> dict[str, list[str]]:
    """Config-file entries that let a server load SoftHSM2 and call the moto KMS (plain
    http on loopback, named explicitly): the trust roots of ``keyquorum.seal.trust``."""
    config = {"pkcs11_modules": [SOFTHSM_MODULE]}
    if kms is not None:
        config.update(kms_endpoints=[kms.endpoint_url], kms_plain_http_hosts=["127.0.0.1"])
    return config


# -- hostile stand-ins: a module that must never load, an endpoint that must never be called --

_EVIL_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void ran(void) {
    const char *path = getenv("KQ_TEST_EVIL_MARKER");
    if (path) { FILE *f = fopen(path, "w"); if (f) { fputs("code ran", f); fclose(f); } }
}
"""


@dataclass
class Evil:
    """A shared library that leaves a marker when loaded, and a socket that counts callers."""

    module: Path
    marker: Path
    endpoint: str
    connections: list[int]

    def untouched(self) -> bool:
        return not self.marker.exists() and not self.connections


@pytest.fixture
def evil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Evil]:
    source = tmp_path / "evil.c"
    source.write_text(_EVIL_C)
    module = tmp_path / "libnotanhsm.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(module), str(source)], check=True)
    marker = tmp_path / "code-ran"
    monkeypatch.setenv("KQ_TEST_EVIL_MARKER", str(marker))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    connections: list[int] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            connections.append(1)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield Evil(module, marker, f"http://127.0.0.1:{listener.getsockname()[1]}",
                   connections)
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()
    # The sanity check that makes every "untouched" assertion mean something: loading
    # this library really does leave the marker.
    probe = subprocess.run(["python3", "-c", f"import ctypes; ctypes.CDLL({str(module)!r})"],
                           env={"KQ_TEST_EVIL_MARKER": str(tmp_path / "probe")}, check=False)
    assert probe.returncode == 0 and (tmp_path / "probe").read_text() == "code ran"


def add_seal(http: httpx.Client, body: dict[str, object], shares: list[str]) -> dict:
    """Propose a seal (``POST /v1/sys/seals``) and have custodians approve it with their
    shares (``/v1/sys/seal-add/update``); the added seal's description, or the first
    refusal as the raw response's JSON with its status (``{"status": ..., **body}``)."""
    proposed = http.post("/v1/sys/seals", json=body)
    if proposed.status_code != 200:
        return {"status": proposed.status_code, **proposed.json()}
    answer = proposed.json()
    for share in shares:
        step = http.post("/v1/sys/seal-add/update",
                         json={"nonce": answer["nonce"], "share": share})
        assert step.status_code == 200, step.text
        answer = step.json()
        if answer.get("complete"):
            return dict(answer["seal"])
    raise AssertionError(f"the seal was not added with {len(shares)} share(s): {answer}")
