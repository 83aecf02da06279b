"""The AWS KMS API over keyquorum's keys, policies and audit (docs/AWS-KMS.md).

``front.KmsFront`` is mounted by ``api.app.foreign_fronts``; requests are signed with
AWS SigV4 by access keys (``auth.access_keys``) and run through the native pipeline.
"""
