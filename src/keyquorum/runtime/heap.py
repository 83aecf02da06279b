"""The garbage collector tuned for a long-running server.

CPython's cyclic collector walks every tracked object of a generation when it
runs. A server holds about 150,000 objects after start-up (its modules, the
FastAPI app, pydantic's validators, SQLAlchemy's tables) that live until it stops,
and every request leaves a few objects in flight that a collection promotes, so
the oldest generation came due every second or so under load: measured under wrk
on a single-encrypt load, 9 full collections of about 70 ms each in 10 s, on the
event loop, with every request on the worker waiting meanwhile (about 18 µs of
CPU per request, and 70 ms added to the tail latency each time).

``settle`` collects once, then moves everything alive into the permanent
generation (``gc.freeze``), which collections skip: they then walk only what was
made since; and it lets the youngest generation grow ten times larger before it is
collected. Objects allocated later are collected as before, and reference
counting frees everything the moment it is unreachable, frozen or not: this changes
when cycles are looked for, not what is freed. It runs before the server serves,
so nothing of a request is frozen; ``keyquorum server`` starts sealed, so nothing
of an unsealed key is either (``keyquorum dev`` unseals first: what it made while
unsealed is frozen too, and is still freed by reference counting and wiped on seal
as before; only such objects caught in reference cycles would outlive a seal).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 7_000
"""Container allocations, less deallocations, between two collections of the youngest
generation; CPython's default is 700. Under wrk (64 connections, single encrypt) the
default ran one about every 40 requests, and each promoted the objects of the
requests then in flight, which is what filled the older generations. Ten times that
holds a few MiB of young objects at most; measured on the same load, the
collector's time fell from 460 to 230 ms per run of the benchmark driver."""


def settle() -> None:
    """Collect, exempt everything alive now from later collections, and collect the
    youngest generation less often."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
