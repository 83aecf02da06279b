"""A server freezes what start-up left alive, so full collections stop walking it.

Measured before (``runtime.heap``): about 150,000 start-up objects walked by every
full collection, 70 ms each on the event loop, about once a second under load.
Run in a child process: freezing the test process's own heap would change every
later test's collections.
"""

from __future__ import annotations

import json
import subprocess
import sys

from keyquorum.runtime import heap

_CHILD = """
import gc, json, tempfile
from pathlib import Path
from keyquorum.api.app import create_app
from keyquorum.config import Settings
from keyquorum.runtime import heap
from keyquorum.runtime.wiring import build_core

core = build_core(Settings(data_dir=Path(tempfile.mkdtemp())))
app = create_app(core)
tracked_before = len(gc.get_objects())
heap.settle()
print(json.dumps({"before": tracked_before, "frozen": gc.get_freeze_count(),
                  "tracked_after": len(gc.get_objects()),
                  "threshold": list(gc.get_threshold())}))
"""


def test_settle_freezes_the_start_up_heap_and_collects_the_young_less_often() -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          timeout=120, check=True)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] > 50_000  # the app: modules, validators, tables
    assert seen["frozen"] >= seen["before"] * 9 // 10
    assert seen["tracked_after"] < 1_000  # what a full collection still walks
    assert seen["threshold"][0] == heap.YOUNG_THRESHOLD
