"""`keyquorum server` serves TLS when given a certificate and refuses unsafe plain HTTP."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kq_support import ServerProcess, free_port


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyquorum test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.server
@pytest.mark.parametrize("workers", [1, 2])
def test_tls_server_answers_over_https_only(tmp_path: Path, workers: int) -> None:
    cert, key = self_signed(tmp_path)
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), test_clock=workers == 1,
                           extra_args=["--tls-cert", str(cert), "--tls-key", str(key),
                                       "--workers", str(workers)])
    server.start(wait=False)
    try:
        url = f"https://127.0.0.1:{server.port}/v1/sys/seal-status"
        for _ in range(100):
            try:
                answer = httpx.get(url, verify=ssl.create_default_context(cafile=str(cert)),
                                   timeout=1)
                break
            except httpx.TransportError:
                import time

                time.sleep(0.1)
        else:
            pytest.fail("TLS server did not come up")
        assert answer.status_code == 200
        assert answer.json()["initialized"] is False
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{server.port}/v1/sys/seal-status", timeout=2)
    finally:
        server.stop()


@pytest.mark.server
def test_plain_http_on_a_public_address_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keyquorum", "server", "--data-dir", str(tmp_path / "d"),
         "--listen", "0.0.0.0:8299"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "refusing plain HTTP" in result.stderr


@pytest.mark.server
def test_unknown_config_field_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "kq.json"
    config.write_text('{"max_item_bytes": 1024, "colour": "blue"}')
    result = subprocess.run(
        [sys.executable, "-m", "keyquorum", "server", "--data-dir", str(tmp_path / "d"),
         "--listen", f"127.0.0.1:{free_port()}", "--config", str(config)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "colour" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")


@pytest.mark.server
@pytest.mark.parametrize("body", ['{"audit_sinks": [{"name": "x", "type": "kafka"}]}',
                                  "{not json", '{"max_item_bytes": "big"}'])
def test_a_bad_config_file_is_one_clear_error_line(tmp_path: Path, body: str) -> None:
    config = tmp_path / "kq.json"
    config.write_text(body)
    result = subprocess.run(
        [sys.executable, "-m", "keyquorum", "server", "--data-dir", str(tmp_path / "d"),
         "--listen", f"127.0.0.1:{free_port()}", "--config", str(config)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


@pytest.mark.server
def test_second_server_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port())
    server.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "keyquorum", "server", "--data-dir", str(server.data_dir),
             "--listen", f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert "another keyquorum server" in result.stderr
    finally:
        server.stop()
