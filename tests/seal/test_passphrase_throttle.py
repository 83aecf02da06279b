"""The passphrase throttle: one attempt at a time, doubling waits after repeated failures."""

from __future__ import annotations

import threading

import pytest

from keyquorum.errors import RateLimited, WrongPassphrase
from keyquorum.seal.passphrase_throttle import PassphraseThrottle


class FakeTime:
    def __init__(self) -> None:
        self.value = 1_000.0

    def __call__(self) -> float:
        return self.value


def fail(throttle: PassphraseThrottle) -> None:
    with pytest.raises(WrongPassphrase), throttle.attempt():
        raise WrongPassphrase()


def test_three_free_failures_then_doubling_waits_capped() -> None:
    clock = FakeTime()
    throttle = PassphraseThrottle(clock, free_failures=3, max_delay=8)
    for _ in range(3):
        fail(throttle)  # no wait between the free ones
    waits = []
    for _ in range(6):
        fail(throttle)
        with pytest.raises(RateLimited) as refused, throttle.attempt():
            pytest.fail("ran while it had to wait")
        waits.append(refused.value.details["retry_after"])
        clock.value += refused.value.details["retry_after"]
    assert waits == [1, 2, 4, 8, 8, 8]
    assert throttle.failures() == 9


def test_a_refused_attempt_does_not_count_and_success_resets() -> None:
    clock = FakeTime()
    throttle = PassphraseThrottle(clock, free_failures=1)
    fail(throttle)
    fail(throttle)  # the second failure: wait 1 s
    for _ in range(5):  # refusals while waiting do not lengthen the wait
        with pytest.raises(RateLimited), throttle.attempt():
            pass
    clock.value += 1
    with throttle.attempt():
        pass
    assert throttle.failures() == 0
    fail(throttle)  # free again after a success
    with throttle.attempt():
        pass


def test_other_errors_are_not_counted_as_wrong_passphrases() -> None:
    throttle = PassphraseThrottle(FakeTime(), free_failures=0)
    with pytest.raises(ValueError), throttle.attempt():
        raise ValueError("not a guess")
    assert throttle.failures() == 0
    with throttle.attempt():
        pass


def test_a_second_attempt_while_one_runs_is_refused_not_queued() -> None:
    throttle = PassphraseThrottle(FakeTime())
    inside, release = threading.Event(), threading.Event()

    def slow() -> None:
        with throttle.attempt():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=slow)
    worker.start()
    assert inside.wait(10)
    with pytest.raises(RateLimited) as refused, throttle.attempt():
        pass
    assert "running" in refused.value.message
    release.set()
    worker.join()
    with throttle.attempt():  # free again once the first is done
        pass
