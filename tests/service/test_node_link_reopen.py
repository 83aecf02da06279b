"""A node sealed and unsealed between two passes of its link stays unsealed.

The link follows the cluster's seal epoch: an epoch raised since this node opened
means someone sealed the cluster, so the node seals too. An operator who seals
and at once unseals (``keyquorum operator seal`` then ``unseal --passphrase``, in
under the link's one-second interval) raised the epoch *before* this opening: the
node must not take its own earlier seal for a new one and seal itself again
(it did: the README's seal-set block left the server sealed, at random).
"""

from __future__ import annotations

from pathlib import Path

from http_helpers import ok
from inprocess_server import InProcessServer
from keyquorum.runtime.node_link import NodeLink
from keyquorum.service.node_handoff import raise_epoch


def test_a_seal_and_unseal_the_link_never_saw_does_not_seal_the_node_again(
        tmp_path: Path, migrated_store: Path) -> None:
    node = InProcessServer(tmp_path / "store", run_scheduler=False, migrated=migrated_store)
    try:
        node.start()
        node.init()
        node.unseal()
        assert node.core is not None
        link = NodeLink(node.core, node.core.node)
        link.tick()  # notes the epoch the node is open under
        with node.client() as http:
            assert ok(http.post("/v1/sys/seal"))["sealed"] is True  # raises the epoch
        node.unseal()  # before the link's next pass
        link.tick()
        link.tick()
        assert not node.core.sealed
        with node.core.engine.begin() as conn:  # another node seals the cluster
            raise_epoch(conn, node.core.clock.now())
        link.tick()
        assert node.core.sealed  # which this node still follows
    finally:
        node.stop()


def test_a_cluster_seal_between_opening_and_the_links_first_pass_seals_the_node(
        tmp_path: Path, migrated_store: Path) -> None:
    node = InProcessServer(tmp_path / "store", run_scheduler=False, migrated=migrated_store)
    try:
        node.start()
        node.init()
        node.unseal()  # opened under epoch 0
        assert node.core is not None
        link = NodeLink(node.core, node.core.node)
        with node.core.engine.begin() as conn:  # another node seals the cluster at once
            raise_epoch(conn, node.core.clock.now())
        link.tick()  # its first pass: the epoch it compares with is the one it opened under
        assert node.core.sealed
    finally:
        node.stop()
