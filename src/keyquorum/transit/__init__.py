"""The Vault / OpenBao transit engine API in front of keyquorum (docs/VAULT-TRANSIT.md).

Vault clients (hvac, the ``bao``/``vault`` command line, Spring Vault) reach
keyquorum's keys through ``/v1/<mount>/...``. Every endpoint translates Vault's
input into the domain values the native routes use, runs one service call
through the native pipeline (``Runner.execute``: the caller's token, the native
twin's permission, the audit record) and shapes the result as Vault's envelope.
Nothing here authorizes or audits by itself.
"""
