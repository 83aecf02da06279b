"""Which native code and network targets a seal may use: the operator's config, never a request.

A PKCS#11 seal ``dlopen``s its module inside the process that holds the root key;
a KMS seal sends requests signed with the host's cloud credential to its endpoint.
Neither may come from an API request, a stored entry or a backup file alone: each
is allowed only when the server's config file (or, for restore and drill, the
operator's local recovery config) lists it. ``SealTrust`` is that list, checked
when a seal is added *and* every time one is opened (a restored store's entries
are data, not configuration).

- ``pkcs11_modules``: absolute paths of modules that may be loaded. Each is also
  checked at load: the file it resolves to is a regular file which, with its
  directory, is owned by root or by this process's user and writable by nobody else.
- ``kms_endpoints``: ``endpoint_url`` values a KMS seal may name (none: only the
  AWS default endpoint of the seal's region). https only, unless the host is in
  ``kms_plain_http_hosts`` (a test double or a VPC proxy on loopback).
- PIN sources: ``pin_env`` must start with ``pin_env_prefix``; ``pin_file`` must be
  inside ``pin_dir`` (none configured: no PIN file is allowed).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from keyquorum.errors import InvalidRequest

DEFAULT_PIN_ENV_PREFIX = "KEYQUORUM_HSM_PIN"


class NotConfigured(InvalidRequest):
    """A seal names a module, endpoint or PIN source the operator's config does not list."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="not_configured")


@dataclass(frozen=True)
class SealTrust:
    """The modules, endpoints and PIN sources the operator's configuration allows."""

    pkcs11_modules: frozenset[str] = frozenset()
    kms_endpoints: frozenset[str] = frozenset()
    kms_plain_http_hosts: frozenset[str] = frozenset()
    pin_env_prefix: str = DEFAULT_PIN_ENV_PREFIX
    pin_dir: str | None = None

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> SealTrust:
        """From config-file fields (``ValueError`` naming the field for a bad one)."""
        modules = _strings(raw.get("pkcs11_modules", []), "pkcs11_modules")
        for module in modules:
            if not os.path.isabs(module):
                raise ValueError("pkcs11_modules must be absolute paths")
        hosts = _strings(raw.get("kms_plain_http_hosts", []), "kms_plain_http_hosts")
        endpoints = _strings(raw.get("kms_endpoints", []), "kms_endpoints")
        prefix = raw.get("pkcs11_pin_env_prefix", DEFAULT_PIN_ENV_PREFIX)
        if not isinstance(prefix, str) or len(prefix) < 4 or not prefix.isupper():
            raise ValueError("pkcs11_pin_env_prefix must be an upper-case name prefix of at "
                             "least 4 characters")
        pin_dir = raw.get("pkcs11_pin_dir")
        if pin_dir is not None and (not isinstance(pin_dir, str) or not os.path.isabs(pin_dir)):
            raise ValueError("pkcs11_pin_dir must be an absolute directory path")
        trust = cls(frozenset(modules), frozenset(endpoints), frozenset(hosts), prefix,
                    os.path.normpath(pin_dir) if pin_dir else None)
        for endpoint in endpoints:
            try:
                trust._endpoint_scheme_allowed(endpoint)
            except InvalidRequest as exc:
                raise ValueError(f"kms_endpoints: {exc.message}") from None
        return trust

    # -- checks (InvalidRequest / NotConfigured naming the rule) -------------------------

    def check_module(self, module: str) -> None:
        """Listed in the config; a root- or self-owned regular file nobody else may write."""
        if module not in self.pkcs11_modules:
            raise NotConfigured(f"pkcs11: the module {module} is not listed in the server's "
                                "configuration (pkcs11_modules)")
        # The file actually loaded (a distribution's symlink resolved) and its directory:
        # nobody but root or this user may have put or be able to put code there.
        real = os.path.realpath(module)
        try:
            info, folder = os.stat(real), os.stat(os.path.dirname(real))
        except OSError:
            raise NotConfigured(f"pkcs11: no PKCS#11 module at {module}") from None
        if not stat.S_ISREG(info.st_mode):
            raise NotConfigured(f"pkcs11: {module} must be a regular file")
        for item in (info, folder):
            if item.st_uid not in (0, os.geteuid()) or item.st_mode & 0o022:
                raise NotConfigured(f"pkcs11: {module} and its directory must be owned by "
                                    "root (or this user) and writable by nobody else")

    def check_pin_source(self, params: dict[str, Any]) -> None:
        if "pin_env" in params:
            if not str(params["pin_env"]).startswith(self.pin_env_prefix):
                raise NotConfigured(f"pkcs11: pin_env must start with {self.pin_env_prefix}")
            return
        pin_file = str(params.get("pin_file", ""))
        if self.pin_dir is None:
            raise NotConfigured("pkcs11: pin_file is not allowed: the server's configuration "
                                "names no pkcs11_pin_dir")
        if os.path.dirname(os.path.normpath(pin_file)) != self.pin_dir:
            raise NotConfigured(f"pkcs11: pin_file must be a file directly in {self.pin_dir}")

    def check_endpoint(self, endpoint: str | None) -> None:
        """None (the region's AWS endpoint) or a listed URL."""
        if endpoint is None:
            return
        if endpoint not in self.kms_endpoints:
            raise NotConfigured("awskms: endpoint_url is not listed in the server's "
                                "configuration (kms_endpoints)")
        self._endpoint_scheme_allowed(endpoint)

    def _endpoint_scheme_allowed(self, endpoint: str) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme == "https" and parts.hostname:
            return
        if parts.scheme == "http" and parts.hostname in self.kms_plain_http_hosts:
            return
        raise NotConfigured("awskms: endpoint_url must be https (plain http only for a host "
                            "listed in kms_plain_http_hosts)")

    def check_params(self, kind: str, params: dict[str, Any]) -> None:
        """Every configured-target rule for one seal's public parameters."""
        if kind == "pkcs11":
            self.check_module(str(params.get("module")))
            self.check_pin_source(params)
        elif kind == "awskms":
            self.check_endpoint(params.get("endpoint_url"))


def _strings(value: object, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{name} must be a list of strings")
    return list(value)

