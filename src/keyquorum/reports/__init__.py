"""Read-only evidence for auditors: the key inventory, the compliance report, their HTML.

Reports read the live system and change nothing; they depend on ``service`` and
``storage``, and nothing in the request path depends on them.
"""
