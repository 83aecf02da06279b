"""Dual control guards transit's delete as it guards the native schedule-deletion."""

from __future__ import annotations

import re

from dual_control_support import cast
from inprocess_server import InProcessServer
from transit_support import Vault, errors


def test_delete_answers_an_approval_id_and_the_resend_with_it_goes_through(
        fresh_inprocess: InProcessServer) -> None:
    server = fresh_inprocess
    server.init()
    server.unseal()
    with server.anonymous() as http:
        root = Vault(http, server.root_token)
        root.data(root.write("keys/guarded"))
        root.data(root.write("keys/guarded/config", {"deletion_allowed": True}))
    people = cast(server)
    try:
        with server.anonymous() as http:
            admin = Vault(http, people.admin)
            message = errors(admin.request("DELETE", "keys/guarded"), 403)[0]
            assert message.startswith("approval_required: schedule-deletion is under dual "
                                       "control")
            found = re.search(r"apr_[A-Za-z0-9_-]+", message)
            assert found is not None
            approval_id = found.group(0)
            assert admin.data(admin.request("GET", "keys/guarded"))["kq_state"] == "enabled"
            people.approve(approval_id)
            answer = admin.request("DELETE", "keys/guarded", approval_id=approval_id)
            assert answer.status_code == 200, answer.text
            assert "scheduled the key" in answer.json()["warnings"][0]
            state = admin.data(admin.request("GET", "keys/guarded"))["kq_state"]
            assert state == "destroy-scheduled"
    finally:
        people.close()
