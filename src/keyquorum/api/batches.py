"""How a batch shares the event loop: a CPU-time slice on the loop, the rest on two
threads (``Runner._run_batch``)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from keyquorum.api.request_records import BatchTally

LOOP_SLICE = 0.005
"""How much of the event loop's CPU time one batch may use before the rest moves to a thread.

CPU time, not wall time: on a busy machine the loop's thread is preempted (by other
processes, or by a batch thread holding the GIL), and a wall-clock slice would then
send ever more cheap items to threads, where they fight the loop for the GIL and
cost more (measured: under load 40% of the items of 100-item AES batches spilled).
The wall clock is read per item (cheap); the thread's CPU clock (a system call) only
once the wall-clock deadline has passed, to decide whether the slice is really spent."""
BATCH_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyquorum-batch")
"""Batch remainders run here, not in the 40-thread default pool: many threads fighting
for the GIL over CPU-bound items cost more than they give (measured on 100-item batches)."""


@dataclass
class Batch:
    loop_deadline: float
    cpu_started: float
    results: list[dict[str, Any]] = field(default_factory=list)
    tally: BatchTally = field(default_factory=BatchTally)
    allowed_without_context: bool = False
    """Whether the caller was allowed the route's permission on the key for an item with
    no context (``Runner._authorize_item``): then the others without one are too."""

    def slice_spent(self) -> bool:
        """Whether this batch used ``LOOP_SLICE`` of the loop thread's CPU; if not, the
        wall-clock deadline moves to when it could have, at the earliest."""
        left = LOOP_SLICE - (time.thread_time() - self.cpu_started)
        if left <= 0:
            return True
        self.loop_deadline = time.perf_counter() + left
        return False
