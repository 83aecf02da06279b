"""``keyquorum share check``: fully offline, against the commitments saved at init."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from keyquorum.cli.main import app
from keyquorum.seal.shamir import create_shamir_seal

# No server anywhere: the address points at a port nothing listens on.
OFFLINE = {"KEYQUORUM_ADDR": "http://127.0.0.1:9"}


def _seal(tmp_path: Path, name: str = "commitments.json") -> tuple[list[str], Path]:
    config, shares = create_shamir_seal(bytes(range(32)), 3, 2)
    path = tmp_path / name
    path.write_text(json.dumps({"commitments": [c.hex() for c in config.commitments]}))
    return shares, path


def test_a_good_share_checks_out_offline(tmp_path: Path) -> None:
    shares, commitments = _seal(tmp_path)
    runner = CliRunner()
    for i, share in enumerate(shares, start=1):
        result = runner.invoke(app, ["share", "check", share, "--commitments",
                                     str(commitments)], env=OFFLINE)
        assert result.exit_code == 0, result.output
        assert f"ok: share {i} matches" in result.stdout
    piped = runner.invoke(app, ["share", "check", "--commitments", str(commitments)],
                          input=shares[0] + "\n", env=OFFLINE)
    assert piped.exit_code == 0 and "ok: share 1" in piped.stdout


def test_a_wrong_share_or_wrong_commitments_are_refused(tmp_path: Path) -> None:
    shares, commitments = _seal(tmp_path)
    other_shares, other = _seal(tmp_path, "other.json")
    runner = CliRunner()
    foreign = runner.invoke(app, ["share", "check", other_shares[0], "--commitments",
                                  str(commitments)], env=OFFLINE)
    assert foreign.exit_code == 1 and "mismatch" in foreign.stderr
    swapped = runner.invoke(app, ["share", "check", shares[0], "--commitments", str(other)],
                            env=OFFLINE)
    assert swapped.exit_code == 1 and "mismatch" in swapped.stderr
    typo = shares[1][:-1] + ("0" if shares[1][-1] != "0" else "1")
    bad = runner.invoke(app, ["share", "check", typo, "--commitments", str(commitments)],
                        env=OFFLINE)
    assert bad.exit_code == 1 and "checksum" in bad.stderr
    assert shares[1] not in bad.output  # the share is never echoed
    broken = tmp_path / "broken.json"
    broken.write_text('{"commitments": ["zz"]}')
    unreadable = runner.invoke(app, ["share", "check", shares[0], "--commitments",
                                     str(broken)], env=OFFLINE)
    assert unreadable.exit_code == 2
