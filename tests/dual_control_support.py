"""A cast for dual-control tests: root, two admins (requesters), three approvers, an outsider.

Tokens are made before dual control is turned on (afterwards, minting an
approver token is itself dual-controlled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from http_helpers import assert_error, ok
from inprocess_server import InProcessServer
from kq_support import ServerProcess

Server = ServerProcess | InProcessServer  # the same surface: client(token), root_token

ADMIN_OPERATIONS = ["create", "read", "list", "revoke", "delete", "rotate", "encrypt",
                    "disable", "enable",
                    "sys:policies", "sys:tokens", "sys:dual-control", "audit:read"]


@dataclass
class Cast:
    server: Server
    admin: str
    other_admin: str
    approvers: list[str]
    outsider: str
    _clients: list[httpx.Client] = field(default_factory=list)

    def http(self, token: str | None = None) -> httpx.Client:
        client = self.server.client(token)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def approve(self, approval_id: str, count: int = 2) -> dict[str, Any]:
        """``count`` distinct approvers approve; the last answer."""
        answer: dict[str, Any] = {}
        for token in self.approvers[:count]:
            answer = ok(self.http(token).post(f"/v1/approvals/{approval_id}/approve",
                                              json={"note": "looked at the ticket"}))
        return answer

    def with_approval(self, token: str | None, method: str, path: str,
                      body: dict[str, Any]) -> dict[str, Any]:
        """Send, get approved by two approvers, re-send with the approval id; the answer."""
        http = self.http(token)
        approval_id = needs_approval(http.request(method, path, json=body))
        self.approve(approval_id)
        answer: dict[str, Any] = ok(http.request(method, path,
                                                 json={**body, "approval_id": approval_id}))
        return answer


def make_token(root: httpx.Client, policies: list[str], name: str) -> str:
    return str(ok(root.post("/v1/auth/tokens", json={"policies": policies, "name": name}))
               ["token"])


def cast(server: Server, approvals: int | None = 2) -> Cast:
    """Policies and tokens for every role; dual control on with ``approvals`` (None: off)."""
    with server.client() as root:
        ok(root.put("/v1/policies/dc-admin",
                    json={"rules": [{"keys": "**", "operations": ADMIN_OPERATIONS}]}))
        ok(root.put("/v1/policies/dc-approver",
                    json={"rules": [{"keys": "**", "operations": ["approve", "read"]}]}))
        ok(root.put("/v1/policies/dc-user",
                    json={"rules": [{"keys": "dc/**", "operations": ["encrypt", "read"]}]}))
        ok(root.put("/v1/policies/dc-reader",
                    json={"rules": [{"keys": "**", "operations": ["read", "sys:read"]}]}))
        made = Cast(server=server,
                    admin=make_token(root, ["dc-admin"], "admin"),
                    other_admin=make_token(root, ["dc-admin"], "other-admin"),
                    approvers=[make_token(root, ["dc-approver"], f"approver-{n}")
                               for n in range(3)],
                    outsider=make_token(root, ["dc-reader"], "outsider"))
        if approvals is not None:
            ok(root.put("/v1/sys/dual-control", json={"approvals": approvals}))
    return made


def needs_approval(answer: httpx.Response, required: int = 2) -> str:
    """The answer is 403 approval_required carrying an approval id; return the id."""
    error = assert_error(answer, 403, "approval_required")
    assert error["approval_id"].startswith("apr_")
    assert error["approvals_required"] == required
    return str(error["approval_id"])
