"""Review F9: an API caller holding ``sys:audit`` cannot turn an audit sink into a way to
overwrite, rotate or append to files, nor stream the log to a host the operator did not
list, nor brick the service with a dead ``required`` sink. Real app, real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import MakeInProcess
from http_helpers import assert_error, ok
from inprocess_server import InProcessServer
from keyquorum.audit.sink_targets import SinkTargets
from keyquorum.audit.sinks import FileSink, parse_sink_config

PASSWD = "root:x:0:0:root:/root:/bin/bash\n"


@pytest.fixture
def sink_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "sinks"
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture
def server(make_inprocess: MakeInProcess, sink_dir: Path) -> InProcessServer:
    made = make_inprocess(config={"audit_sink_dirs": [str(sink_dir)],
                                  "audit_syslog_targets": ["udp://127.0.0.1:9"]})
    made.init()
    made.unseal()
    return made


def _operator(server: InProcessServer) -> str:
    with server.client() as root:
        return str(ok(root.post("/v1/auth/tokens", json={"policies": ["operator"]}))["token"])


def _sink(name: str, **fields: object) -> dict[str, object]:
    return {"type": "file", "policy": "best-effort", "max_bytes": 4096, "keep": 1,
            "fsync": False, **fields}


def test_api_sink_outside_the_configured_directory_is_refused_and_the_file_untouched(
        server: InProcessServer, tmp_path: Path, sink_dir: Path) -> None:
    """The review's reproduction: an operator points a sink at a password file."""
    victim = tmp_path / "victim"
    victim.mkdir()
    passwd = victim / "passwd"
    passwd.write_text(PASSWD)
    with server.client(_operator(server)) as http:
        for path in (passwd, server.data_dir / "keyquorum.db", sink_dir / ".." / "x",
                     sink_dir / "sub" / "x", "relative.jsonl"):
            refused = assert_error(http.put("/v1/sys/audit/sinks/x",
                                            json=_sink("x", path=str(path))),
                                   400, "invalid_request")
            assert refused["reason"] == "not_configured", refused
        assert_error(http.put("/v1/sys/audit/sinks/s", json={
            "type": "syslog", "address": "tcp://198.51.100.7:514", "policy": "best-effort"}),
            400, "invalid_request")
        names = [s["name"] for s in ok(http.get("/v1/sys/audit/sinks"))["sinks"]]
    with server.client() as root:
        for n in range(20):  # records enough to have rotated a 4 KiB sink file
            ok(root.post("/v1/keys", json={"name": f"t/k{n}", "spec": "aes-256-gcm"}))
    assert names == []
    assert passwd.read_text() == PASSWD and sorted(os.listdir(victim)) == ["passwd"]


def test_api_sink_can_never_be_required(server: InProcessServer, sink_dir: Path) -> None:
    with server.client() as root:
        refused = assert_error(root.put("/v1/sys/audit/sinks/r", json=_sink(
            "r", path=str(sink_dir / "r.jsonl"), policy="required")), 400, "invalid_request")
        assert "cannot be required" in refused["message"]
        # Without a policy an API sink is best-effort; a configured syslog address is fine.
        ok(root.put("/v1/sys/audit/sinks/f", json={"type": "file",
                                                   "path": str(sink_dir / "f.jsonl")}))
        ok(root.put("/v1/sys/audit/sinks/s", json={"type": "syslog",
                                                   "address": "udp://127.0.0.1:9"}))
        sinks = {s["name"]: s for s in ok(root.get("/v1/sys/audit/sinks"))["sinks"]}
    assert sinks["f"]["config"]["policy"] == sinks["s"]["config"]["policy"] == "best-effort"
    assert (sink_dir / "f.jsonl").read_bytes().startswith(b'{"type":"record"')


def test_file_sink_never_follows_a_symlink_planted_under_its_name(
        server: InProcessServer, tmp_path: Path, sink_dir: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text(PASSWD)
    os.symlink(target, sink_dir / "linked.jsonl")
    with server.client() as root:
        ok(root.put("/v1/sys/audit/sinks/linked",
                    json=_sink("linked", path=str(sink_dir / "linked.jsonl"))))
        for _ in range(5):
            ok(root.get("/v1/sys/audit/sinks"))
        sinks = {s["name"]: s for s in ok(root.get("/v1/sys/audit/sinks"))["sinks"]}
    assert sinks["linked"]["healthy"] is False and sinks["linked"]["failures"] >= 1
    assert target.read_text() == PASSWD and (sink_dir / "linked.jsonl").is_symlink()


@pytest.mark.parametrize("content", [PASSWD, "SQLite format 3\x00...", ""])
def test_file_sink_never_writes_to_or_rotates_a_file_it_did_not_create(
        tmp_path: Path, content: str) -> None:
    """Checked on the sink itself: a config-file sink too leaves such a file alone."""
    path = tmp_path / "existing"
    path.write_text(content)
    os.chmod(path, 0o644)
    sink = FileSink(parse_sink_config({"name": "f", "type": "file", "path": str(path),
                                       "max_bytes": 4096, "keep": 1}))
    with pytest.raises(PermissionError, match="not made by a keyquorum audit sink"):
        sink.write([b'{"type":"record"}\n' * 300])
    assert path.read_text() == content and sorted(os.listdir(tmp_path)) == ["existing"]


def test_file_sink_reopens_and_rotates_its_own_file(tmp_path: Path) -> None:
    path = tmp_path / "own.jsonl"
    config = parse_sink_config({"name": "f", "type": "file", "path": str(path),
                                "max_bytes": 4096, "keep": 2, "fsync": False})
    first = FileSink(config)
    first.write([b'{"type":"record","n":1}\n'])
    first.close()
    again = FileSink(config)  # after a restart: the file it made is its own
    for _ in range(300):
        again.write([b'{"type":"checkpoint","n":2}\n'])
    again.close()
    assert sorted(os.listdir(tmp_path))[:2] == ["own.jsonl", "own.jsonl.1"]
    assert path.read_bytes().startswith(b'{"type":')


def test_stored_api_sinks_are_not_started_when_the_config_no_longer_lists_them(
        make_inprocess: MakeInProcess, sink_dir: Path) -> None:
    first = make_inprocess(config={"audit_sink_dirs": [str(sink_dir)]})
    first.init()
    first.unseal()
    with first.client() as root:
        ok(root.put("/v1/sys/audit/sinks/f", json={"type": "file",
                                                   "path": str(sink_dir / "f.jsonl")}))
    first.stop()
    again = InProcessServer(first.data_dir, config={})
    again.root_token, again.shares = first.root_token, first.shares
    again.start()
    try:
        again.unseal()
        with again.client() as root:
            assert ok(root.get("/v1/sys/audit/sinks"))["sinks"] == []
    finally:
        again.stop()


@pytest.mark.parametrize(("raw", "message"), [
    ({"audit_sink_dirs": ["relative"]}, "absolute"),
    ({"audit_syslog_targets": "udp://x:1"}, "list of strings"),
])
def test_bad_sink_targets_in_the_config_file_stop_the_start(raw: dict[str, object],
                                                           message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SinkTargets.from_config(raw)
