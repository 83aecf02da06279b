"""Which key policy documents mean what keyquorum does (the identities' policies decide)."""

from __future__ import annotations

import json

import pytest

from keyquorum.kms.key_policy import default_policy, is_default_policy

ACCOUNT = "123456789012"


def _doc(**statement: object) -> str:
    base = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*", "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [{**base, **statement}]})


@pytest.mark.parametrize("text", [
    json.dumps(default_policy(ACCOUNT)), _doc(), _doc(Principal={"AWS": ACCOUNT}),
    _doc(Action=["kms:*"], Resource=["*"]), _doc(Sid="anything")])
def test_the_default_policy_in_its_spellings(text: str) -> None:
    assert is_default_policy(text, ACCOUNT)


@pytest.mark.parametrize("text", [
    "not json", "[]", json.dumps({"Statement": "x"}), json.dumps({"Statement": ["x"]}),
    _doc(Effect="Deny"), _doc(Action="kms:Decrypt"), _doc(Resource="arn:aws:kms:*"),
    _doc(Principal={"AWS": "arn:aws:iam::999999999999:root"}),
    _doc(Condition={"StringEquals": {"kms:ViaService": "s3"}}),
    json.dumps({"Statement": [json.loads(_doc())["Statement"][0]] * 2})])
def test_anything_else_is_not_it(text: str) -> None:
    assert not is_default_policy(text, ACCOUNT)
