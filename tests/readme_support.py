"""What tests/test_readme.py gives the README's reader's machine: an install, a CA, AWS, an HSM.

The README assumes things a real machine has and a test must make: this tree
installed with pip (into a throwaway directory, never the test's own
environment), a TLS certificate signed by a CA the operator trusts, an AWS
account holding the KMS key the seal set names, and SoftHSM2 with a token
directory the test may write. Each is made here the way the README's reader
would have it, so the README itself runs unchanged.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from kq_support import free_port

ROOT = Path(__file__).resolve().parents[1]


def pip_install_tree(scratch: Path) -> Path:
    """``pip install .`` of this tree into ``scratch/installed``; the directory is returned.

    A copy of the tree (what a clone holds: pyproject.toml, README.md, src/) is built
    and installed the way ``pip install .`` does, with ``--target`` so that nothing in
    the running environment changes (``--prefix`` would uninstall the editable
    keyquorum the tests import). ``--no-deps``: the dependencies are this
    environment's; ``--no-index --no-build-isolation``: no network, setuptools from
    the test extra. Run with ``PYTHONPATH`` set to it, the installed package (its
    package data included: the migrations) is what is imported.
    """
    source = scratch / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    target = scratch / "installed"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"pip install . failed:\n{done.stdout}\n{done.stderr}"
    assert (target / "bin" / "keyquorum").exists(), "pip installed no keyquorum command"
    return target


def write_tls(directory: Path) -> None:
    """``ca.crt``, and ``server.crt`` / ``server.key`` for 127.0.0.1 and localhost, signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "readme test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
              .issuer_name(ca_name).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([
                  x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                  critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.crt").write_bytes(ca.public_bytes(pem))
    (directory / "server.crt").write_bytes(server.public_bytes(pem))
    (directory / "server.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (directory / "server.key").chmod(0o600)


def write_softhsm_conf(directory: Path) -> Path:
    """A SoftHSM2 configuration whose tokens live in ``directory`` (not the machine's)."""
    (directory / "tokens").mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\n"
                    "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n")
    return conf


@contextmanager
def aws_account(home: Path, scratch: Path, region: str, alias: str) -> Iterator[None]:
    """A moto KMS holding ``alias``, reached through ``home``'s ~/.aws files.

    The standard credential chain, shared-files part: ``~/.aws/credentials`` and
    ``~/.aws/config``, whose ``services`` section sends KMS calls to moto. Nothing
    goes into the environment, so a process sees this account only as any AWS user's
    process would, through its home directory.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(scratch / "moto.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                    "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1.0)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, \
                    "the moto server did not start; see moto.log"
                time.sleep(0.1)
        aws = home / ".aws"
        aws.mkdir()
        (aws / "credentials").write_text(
            "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
        (aws / "config").write_text(
            f"[default]\nregion = {region}\nservices = readme-kms\n\n"
            f"[services readme-kms]\nkms =\n  endpoint_url = {url}\n")
        import boto3

        kms = boto3.client("kms", region_name=region, endpoint_url=url,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
