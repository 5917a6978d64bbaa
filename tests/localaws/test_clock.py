"""The virtual clock: waits overlap as in real time, work holds it, nothing waits for real."""

import threading
import time

import pytest

from localaws.clock import Clock


@pytest.fixture
def clock():
    c = Clock()
    yield c
    c.close()


def test_an_hour_passes_in_well_under_a_second(clock):
    start, real = clock.time(), time.monotonic()
    clock.sleep(3600)
    assert clock.time() - start == pytest.approx(3600, abs=1)
    assert time.monotonic() - real < 1


def test_sequential_waits_add_up(clock):
    start = clock.time()
    for _ in range(5):
        clock.sleep(60)
    assert clock.time() - start == pytest.approx(300, abs=1)


def test_parallel_waits_overlap_instead_of_adding_up(clock):
    start = clock.time()
    threads = [threading.Thread(target=clock.sleep, args=(3600,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert clock.time() - start == pytest.approx(3600, abs=5)


def test_work_holds_the_clock(clock):
    woke = threading.Event()
    start = clock.time()
    with clock.holding():
        threading.Thread(target=lambda: (clock.sleep(3600), woke.set())).start()
        time.sleep(0.3)
        assert not woke.is_set()
        assert clock.time() - start < 5
    assert woke.wait(5)
    assert clock.time() - start >= 3600


def test_a_sleeping_holder_does_not_block_itself(clock):
    start = clock.time()
    with clock.holding():
        clock.sleep(600)
    assert clock.time() - start >= 600


def test_wait_for_times_out_in_virtual_time(clock):
    event = threading.Event()
    start = clock.time()
    assert clock.wait_for(event, 900) is False
    assert clock.time() - start >= 900
    event.set()
    assert clock.wait_for(event, 900) is True


def test_advance_by_hand(clock):
    start = clock.time()
    clock.advance(7200)
    assert clock.time() - start >= 7200


def test_a_holder_joining_another_thread_does_not_stop_the_clock(clock):
    done = threading.Event()

    def worker():
        clock.sleep(3600)
        done.set()

    start = clock.time()
    with clock.holding():
        threading.Thread(target=worker).start()
        assert clock.wait_for(done, None)
    assert clock.time() - start >= 3600


def test_a_thread_started_late_holds_the_clock_from_start(clock, monkeypatch):
    """A worker the OS schedules late (here 100 ms, far past GRACE) must not let the clock jump
    to its parent's timeout: the hold is taken in start(), before the thread runs."""
    import localaws.clock as clock_module

    monkeypatch.setattr(clock_module, "_CLOCK", clock)
    result = []

    def slow_to_start():
        time.sleep(0.1)  # real work, or a thread the OS has not run yet
        result.append("done")

    start = clock.time()
    worker = clock_module.HoldingThread(target=slow_to_start)
    worker.start()
    worker.join(99_999_999)  # the parent waits with a virtual timeout, as a Task state does
    assert result == ["done"]
    assert clock.time() - start < 60


def test_no_jump_slips_between_a_finishing_thread_and_its_joiner(clock, monkeypatch):
    """A worker sets its 'done' event and releases its hold; its parent, joining, wakes a few
    milliseconds later (a loaded machine: far past GRACE). Meanwhile a far sleeper (an execution
    timeout) exists: the clock must not jump to it in the hand-over."""
    import localaws.clock as clock_module

    monkeypatch.setattr(clock_module, "_CLOCK", clock)
    done, woke = threading.Event(), []
    far = threading.Thread(target=clock.sleep, args=(7 * 86400,), daemon=True)
    far.start()

    def worker():
        time.sleep(0.05)  # real work
        done.set()  # the joiner may notice later; the clock sees the event set

    class SlowToNotice:  # the joiner's own poll, slower than GRACE
        def is_set(self):
            return done.is_set()

        def wait(self, timeout=None):
            time.sleep(0.1)
            return done.is_set()

    start = clock.time()
    with clock.holding():
        clock_module.HoldingThread(target=worker).start()
        woke.append(clock.wait_for(SlowToNotice(), None))
    assert woke == [True]
    assert clock.time() - start < 60
