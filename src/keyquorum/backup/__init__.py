"""Backups, restore and the recovery drill.

- ``format``: the ``KQBK`` file (public header + a KQST-sealed body under a key
  derived from the root key); docs/FORMAT.md section 6.
- ``snapshot``: every table read in one consistent transaction, as body lines.
- ``canaries``: known answers made at backup time, checked by the drill.
- ``writer``: a backup on a running server (``GET /v1/sys/backup``).
- ``restore``: rebuilding a store offline, authenticated before anything is written.
- ``drill``: restore into scratch, unseal, check every canary, report.
"""
