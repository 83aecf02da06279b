"""The administrative and system routes parse their bodies into typed models too
(``api.bodies_admin``, ``api.bodies_sys``): an unknown field, a wrong type or a value
out of range is 400 ``invalid_request`` stating the rule, and nothing changes.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from custodian_keys_support import Custodians
from keyquorum.api.openapi import build_document
from keyquorum.service.core import Core

pytestmark = pytest.mark.anyio

PHRASE = "correct horse battery staple"
CHECKPOINT = {"seq": 1, "chain_hash": "0" * 64, "time": 1.0, "key_id": "k", "signature": "AA=="}

# (method, path, a body the route takes) for every route that reads one, besides the
# key lifecycle and crypto routes (tests/api/test_typed_bodies.py).
ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/auth/tokens", {"policies": ["key-user"], "ttl": "1h"}),
    ("PUT", "/v1/policies/typed", {"rules": [{"keys": "**", "operations": ["read"]}]}),
    ("POST", "/v1/policies/simulate", {"policies": ["key-user"], "operation": "read",
                                       "key": "k"}),
    ("POST", "/v1/approvals/apr_none/approve", {"note": "ok"}),
    ("POST", "/v1/approvals/apr_none/reject", {}),
    ("POST", "/v1/audit/verify", {"checkpoints": []}),
    ("POST", "/v1/audit/hash", {"value": "tenant"}),
    ("POST", "/v1/audit/checkpoint", {}),
    ("PUT", "/v1/sys/audit/sinks/typed", {"type": "syslog", "address": "udp://127.0.0.1:9"}),
    ("DELETE", "/v1/sys/audit/sinks/typed", {}),
    ("PUT", "/v1/sys/dual-control", {"approvals": 0}),
    ("POST", "/v1/sys/unsafe/clock", {"advance_seconds": 0}),
    ("POST", "/v1/sys/seals", {"type": "passphrase", "passphrase": PHRASE}),
    ("DELETE", "/v1/sys/seals/passphrase", {}),
    ("POST", "/v1/sys/rekey/init", {"reissue": True}),
    ("POST", "/v1/sys/rekey/update", {"nonce": "n", "share": "s"}),
    ("POST", "/v1/sys/custodians/share-1/challenge", {}),
    ("POST", "/v1/sys/custodians/share-1/proof", {"challenge_id": "c", "proof": "AA=="}),
]


def assert_invalid(answer: httpx.Response, message: str) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"] == message, error["message"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_every_body_refuses_an_unknown_field_by_name(
        api: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]) -> None:
    answer = await api.request(method, path, json={**body, "colour": "red"})

    assert_invalid(answer, "unknown fields: colour")


async def test_a_token_with_a_bad_ttl_or_name_is_refused_before_anything_runs(
        api: httpx.AsyncClient) -> None:
    assert_invalid(await api.post("/v1/auth/tokens", json={"policies": ["key-user"],
                                                           "ttl": "soon"}),
                   "ttl must be a positive number of seconds or a string like 90d, 12h, "
                   "30m, 45s or 1h30m")
    assert_invalid(await api.post("/v1/auth/tokens", json={"policies": "key-user"}),
                   "policies must be a non-empty list of policy names")
    assert_invalid(await api.post("/v1/auth/tokens", json={"policies": ["key-user"],
                                                           "name": "a\nb"}),
                   "name: token name must be 1-128 printable characters")
    made = await api.post("/v1/auth/tokens", json={"policies": ["key-user", "key-user"],
                                                   "ttl": 60, "name": "typed"})
    assert made.status_code == 200, made.text
    assert made.json()["policies"] == ["key-user"] and made.json()["name"] == "typed"


async def test_dual_control_settings_out_of_range_change_nothing(
        api: httpx.AsyncClient) -> None:
    before = (await api.get("/v1/sys/dual-control")).json()

    assert_invalid(await api.put("/v1/sys/dual-control", json={"approvals": 17}),
                   "dual control: approvals must be an integer 0-16 (0: off)")
    assert_invalid(await api.put("/v1/sys/dual-control", json={"approvals": True}),
                   "approvals must be an integer")
    assert_invalid(await api.put("/v1/sys/dual-control", json={"approvals": 1, "ttl": [1]}),
                   "ttl must be a number of seconds or a string like 90d, 12h or 1h30m")

    assert (await api.get("/v1/sys/dual-control")).json() == before


async def test_a_sink_is_checked_by_the_config_files_rules_and_not_added(
        api: httpx.AsyncClient) -> None:
    assert_invalid(await api.put("/v1/sys/audit/sinks/typed", json={
        "type": "syslog", "address": "udp://127.0.0.1:9", "timeout": 100}),
        "timeout must be 0.01-60 seconds")
    assert_invalid(await api.put("/v1/sys/audit/sinks/typed", json={
        "type": "file", "path": "/tmp/x", "address": "udp://127.0.0.1:9"}),
        "unknown field(s) for a file sink: address")
    assert_invalid(await api.put("/v1/sys/audit/sinks/typed", json={
        "type": "syslog", "name": "other"}), "the sink's name is the one in the path")

    sinks = (await api.get("/v1/sys/audit/sinks")).json()["sinks"]
    assert "typed" not in {sink["name"] for sink in sinks}


async def test_audit_bodies_state_their_limits(api: httpx.AsyncClient) -> None:
    assert_invalid(await api.post("/v1/audit/verify", json={"checkpoints": [CHECKPOINT] * 101}),
                   "checkpoints must have at most 100 entries")
    assert_invalid(await api.post("/v1/audit/verify", json={"checkpoints": [{"seq": 1}]}),
                   "checkpoints: a checkpoint is an object with seq, chain_hash, time, key_id, "
                   "signature (and node, braid, previous, heads for a braid's entry)")
    assert_invalid(await api.post("/v1/audit/hash", json={"value": "x" * 4097}),
                   "value must be at most 4096 characters")
    assert (await api.post("/v1/audit/verify")).json()["ok"] is True  # no body: the live chain


async def test_a_rekey_plan_is_refused_whole_and_no_ceremony_starts(
        api: httpx.AsyncClient) -> None:
    assert_invalid(await api.post("/v1/sys/rekey/init", json={"shares": 3, "threshold": 3}),
                   "threshold 3 of 3 shares needs every share: losing any one share locks "
                   "the data forever; choose a threshold below the number of shares, or give "
                   "force to accept that risk")
    assert_invalid(await api.post("/v1/sys/rekey/init", json={"reissue": True, "shares": 3}),
                   'reissue goes alone: {"reissue": true}')
    assert_invalid(await api.post("/v1/sys/rekey/init",
                                  json={"replace": {"custodian": "share-1"}}),
                   'replace must be {"custodian": OLD, "with": NEW}')

    assert (await api.get("/v1/sys/rekey")).json()["started"] is False
    keys = Custodians(["share-1", "share-2", "share-3"]).keys_body()
    started = await api.post("/v1/sys/rekey/init", json={"shares": 3, "threshold": 3,
                                                         "force": True, "custodian_keys": keys})
    assert started.status_code == 200, started.text
    assert started.json()["new_threshold"] == 3


@pytest.mark.parametrize(("body", "message"), [
    ({"type": "pkcs11", "module": "/usr/lib/softhsm.so", "token_label": "t", "key_label": "k",
      "pin": "271828"},
     "pkcs11: unknown fields: pin; the PIN itself is never sent: give pin_env or pin_file"),
    ({"type": "awskms", "key_id": "k", "region": "us-east-1", "aws_secret_access_key": "x"},
     "awskms: unknown fields: aws_secret_access_key; credentials come from the standard AWS "
     "chain, never the request"),
    ({"type": "passphrase", "passphrase": PHRASE, "extra": 1}, "unknown fields: extra"),
    ({"type": "shamir"}, "the Shamir seal is made at init and changed by rekey"),
    ({"type": "dev"}, "type must be one of: passphrase, pkcs11, awskms, node"),
    ({"type": "passphrase", "passphrase": "short"},
     "a passphrase must be 16-1024 characters long"),
])
async def test_a_seal_request_is_refused_with_the_reason_and_secrets_are_not_echoed(
        api: httpx.AsyncClient, body: dict[str, Any], message: str) -> None:
    assert_invalid(await api.post("/v1/sys/seals", json=body), message)

    seals = (await api.get("/v1/sys/seals")).json()["seals"]
    assert [seal["id"] for seal in seals] == ["shamir"]


@pytest.mark.parametrize(("body", "message"), [
    ({"shares": 3, "threshold": 3}, "threshold 3 of 3 shares needs every share: losing any "
     "one share locks the data forever; choose a threshold below the number of shares, or "
     "give force to accept that risk"),
    ({"shares": 3, "threshold": 4}, "need 1 <= threshold <= shares <= 32"),
    ({"shares": 3.5, "threshold": 2}, "shares must be an integer"),
    ({"shares": 3, "threshold": 2, "custodians": ["ann"]},
     "custodians must name exactly one custodian per share"),
    ({"shares": 3, "threshold": 2, "force": "yes"}, "force must be true or false"),
])
async def test_init_is_refused_whole_and_leaves_the_store_uninitialized(
        fresh_api: httpx.AsyncClient, fresh_core: Core, body: dict[str, Any],
        message: str) -> None:
    assert_invalid(await fresh_api.post("/v1/sys/init", json=body), message)

    assert not fresh_core.initialized


@pytest.mark.parametrize("body", [
    {}, {"share": "x", "reset": True}, {"passphrase": PHRASE, "auto": True},
    {"share": None}, {"auto": False}, {"passphrase": ""}, {"passphrase": 7},
])
async def test_unseal_takes_exactly_one_way_in(fresh_api: httpx.AsyncClient,
                                               body: dict[str, Any]) -> None:
    answer = await fresh_api.post("/v1/sys/unseal", json=body)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"


def test_every_body_route_declares_the_model_it_parses_with(app: Any) -> None:
    document = build_document(app.app, test_clock=True)
    schemas = document["components"]["schemas"]
    for method, path, _body in ROUTES:
        documented = path.replace("apr_none", "{approval_id}").replace(
            "/typed", "/{name}").replace("share-1", "{name}").replace("/passphrase",
                                                                       "/{seal_id}")
        operation = document["paths"][documented][method.lower()]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        for ref in [schema.get("$ref")] + [one["$ref"] for one in schema.get("oneOf", [])]:
            if ref is not None:
                assert schemas[ref.rsplit("/", 1)[1]]["additionalProperties"] is False


@pytest.mark.parametrize("model", ["CreateToken", "PutPolicy", "PutDualControl", "StartRekey",
                                   "AddPassphraseSeal", "AddPkcs11Seal", "AddAwsKmsSeal",
                                   "ApprovalOnly"])
def test_guarded_requests_show_approval_id_in_the_document(app: Any, model: str) -> None:
    schemas = build_document(app.app)["components"]["schemas"]

    assert "approval_id" in schemas[model]["properties"]
