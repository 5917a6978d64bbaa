"""One virtual clock for the local account: time passes as in AWS, and tests need not wait.

Gap closed (moto 5.2.5): moto has no notion of time. Its resources are ready at once (or, in
this package before, one step per Describe), and its Step Functions interpreter waits in real
time (Wait states, Retry backoff, timeouts, `.sync` polling), so a poll bound can never run out
and a one-hour training cannot be waited for in a test.

How virtual time maps to real time (the decision, in four rules):

1. Virtual time is the wall clock plus an offset that only grows: left alone, the account ages
   at the speed of the real world.
2. Whoever waits (a Wait state, a Retry backoff, a `.sync` poll, a timeout) calls `sleep`,
   `sleep_until` or `wait_for`. When everything that waits is asleep and nothing is working,
   the clock jumps to the earliest wake-up (a discrete-event simulation). Waits that overlap in
   real time overlap in virtual time: the N branches of a Map that each wait an hour take one
   virtual hour, not N; the clock is shared, it is never advanced once per branch.
3. Real work holds the clock (`holding()`): a service request being answered, a Lambda
   invocation, a local training or processing job computing. While anything holds it the clock
   does not jump, so the seconds the local Python takes are not virtual hours, and a job's
   virtual length is its entry in `DURATIONS` (resource lifecycle), not its local compute time.
   A thread that sleeps stops holding until it wakes.
4. Resources with a lifecycle (Personalize create/delete, SageMaker jobs) derive their status
   from the clock and their timestamps: `Describe*` and `List*` read the same clock, so they
   agree, and nothing moves because somebody looked.

A short real grace period (GRACE seconds with no new sleeper and no hold) lets threads that
start together all go to sleep before the clock jumps. Tests that create resources outside a
state machine move time themselves with `advance(seconds)`.

Things that happen at a time without anyone waiting for them (a schedule's next run) set an
`alarm`: it never makes the clock jump, but a jump stops at it and rings it first.

For integrators (Step Functions, Lambda, jobs, schedules): a thread that runs an execution's
logic (the execution itself, a Map iteration, a Parallel branch, a task's worker) runs under
`holding()` from start to end, and waits only through this module: `sleep`/`sleep_until` for
time, `wait_for(event, seconds)` for another thread with a timeout, `wait_for(event, None)` for a
join without one. A waiting thread does not hold; a holder blocked anywhere else stops the clock
(and a grace-period jump in the window between two steps could fire a timeout early, which
holding closes).
"""

from __future__ import annotations

import contextlib
import datetime
import heapq
import itertools
import threading
import time as _time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

GRACE = 0.02  # real seconds of quiet before the clock jumps to the next wake-up


class Clock:
    """Wall clock + offset; jumps to the earliest sleeper when nothing else is going on."""

    def __init__(self, grace: float = GRACE) -> None:
        self.grace = grace
        self._offset = 0.0
        self._cond = threading.Condition()
        self._sleepers: list[tuple[float, int]] = []  # (wake-up, ticket), a heap
        self._tickets = itertools.count()
        self._holds: list[_Hold] = []
        self._alarms: list[tuple[float, int, Callable[[], None]]] = []  # a heap
        # thread id -> what it waits for (None: time only); a waiter whose event is already set
        # is about to wake and counts as holding, so no jump slips into the hand-over between
        # a thread that finishes (and releases) and the one that was waiting for it
        self._asleep: dict[int, Any] = {}
        self._quiet_since = _time.monotonic()
        self._closed = False
        self._ticker = threading.Thread(target=self._tick, name="localaws-clock", daemon=True)
        self._ticker.start()

    # --- reading -------------------------------------------------------------------------------

    def time(self) -> float:
        """Virtual seconds since the epoch."""
        return _time.time() + self._offset

    def now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.time(), datetime.UTC)

    # --- waiting -------------------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        self.sleep_until(self.time() + max(float(seconds), 0.0))

    def sleep_until(self, wake: float) -> None:
        """Block until virtual time reaches `wake` (epoch seconds)."""
        with self._asleep_until(wake), self._cond:
            while self.time() < wake and not self._closed:
                self._cond.wait(timeout=min(wake - self.time(), 0.5))

    def wait_for(self, event: threading.Event, seconds: float | None) -> bool:
        """`event.wait(seconds)` with a virtual timeout: True if the event was set in time."""
        if seconds is None:
            return self._join(event)
        wake = self.time() + max(float(seconds), 0.0)
        with self._asleep_until(wake, event):
            while not event.is_set():
                if self.time() >= wake or self._closed:
                    return event.is_set()
                event.wait(0.005)
            return True

    @contextlib.contextmanager
    def _asleep_until(self, wake: float | None, event: Any = None) -> Iterator[None]:
        """This thread waits (it stops holding); with a wake-up time, the clock may jump to it."""
        me = threading.get_ident()
        with self._cond:
            ticket = None if wake is None else (wake, next(self._tickets))
            if ticket is not None:
                heapq.heappush(self._sleepers, ticket)
            self._asleep[me] = event
            self._touch()
        try:
            yield
        finally:
            with self._cond:
                if ticket is not None:
                    self._sleepers.remove(ticket)
                    heapq.heapify(self._sleepers)
                self._asleep.pop(me, None)
                self._touch()

    def _join(self, event: threading.Event) -> bool:
        """Wait for another thread with no timeout: not holding, and no wake-up of its own."""
        with self._asleep_until(None, event):
            while not event.wait(0.005):
                pass
            return True

    # --- holding and moving ----------------------------------------------------------------------

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Real work in progress: the clock does not jump until it ends."""
        hold = self.hold(threading.get_ident())
        try:
            yield
        finally:
            self.release(hold)

    def hold(self, owner: int | None) -> _Hold:
        """A hold on behalf of a thread (None: one not started yet, so it holds regardless)."""
        hold = _Hold(owner)
        with self._cond:
            self._holds.append(hold)
            self._touch()
        return hold

    def release(self, hold: _Hold) -> None:
        with self._cond:
            self._holds.remove(hold)
            self._touch()

    def alarm(self, when: float, callback: Callable[[], None]) -> None:
        """Call `callback` once virtual time reaches `when`, in a thread that holds the clock.

        An alarm never makes the clock jump by itself (an idle account ages in real time), but
        no jump passes it: a jump stops at the alarm, rings it, and goes on once its work is
        done. Schedules use it to fire on time even when a waiter's jump would skip them."""
        with self._cond:
            heapq.heappush(self._alarms, (float(when), next(self._tickets), callback))
            self._touch()

    def _ring_due(self) -> None:
        while self._alarms and self._alarms[0][0] <= self.time():
            _, _, callback = heapq.heappop(self._alarms)
            HoldingThread(target=callback, name="localaws-alarm", daemon=True).start()

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (tests; a user of the server who wants to skip ahead)."""
        with self._cond:
            self._offset += max(float(seconds), 0.0)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _touch(self) -> None:
        self._quiet_since = _time.monotonic()
        self._cond.notify_all()

    def _holders(self) -> int:
        return sum(1 for h in self._holds if self._holds_now(h.owner))

    def _holds_now(self, owner: int | None) -> bool:
        if owner is None or owner not in self._asleep:
            return True
        awaited = self._asleep[owner]
        return awaited is not None and awaited.is_set()

    def _tick(self) -> None:
        with self._cond:
            while not self._closed:
                self._cond.wait(timeout=self.grace)
                self._ring_due()
                if not self._sleepers or self._holders():
                    continue
                if _time.monotonic() - self._quiet_since < self.grace:
                    continue
                target = self._sleepers[0][0]
                if self._alarms and self._alarms[0][0] < target:
                    target = self._alarms[0][0]  # stop at the alarm: it rings before going on
                gap = target - self.time()
                if gap > 0:
                    self._offset += gap
                self._ring_due()
                self._touch()


class _Hold:
    """One holder of the clock; its owner thread stops holding while it waits on the clock."""

    __slots__ = ("owner",)

    def __init__(self, owner: int | None) -> None:
        self.owner = owner


class HoldingThread(threading.Thread):
    """A thread of work that holds the clock from `start()` (in the starting thread, so no jump
    can slip in before it runs) until its target returns; `join` waits on the clock."""

    def start(self) -> None:
        self._clock = current()
        self._hold = self._clock.hold(None)
        self._finished = threading.Event()
        try:
            super().start()
        except BaseException:
            self._clock.release(self._hold)
            raise

    def run(self) -> None:
        self._hold.owner = threading.get_ident()
        try:
            super().run()
        finally:
            self._clock.release(self._hold)
            self._finished.set()

    def join(self, timeout: float | None = None) -> None:
        self._clock.wait_for(self._finished, timeout)
        if self._finished.is_set():
            super().join()


# --- the account's clock ---------------------------------------------------------------------------

_CLOCK = Clock()


def reset() -> Clock:
    """A fresh clock at wall time (a new LocalAccount, a new server)."""
    global _CLOCK
    _CLOCK.close()
    _CLOCK = Clock()
    return _CLOCK


def current() -> Clock:
    return _CLOCK


def time() -> float:
    return _CLOCK.time()


def now() -> datetime.datetime:
    return _CLOCK.now()


def sleep(seconds: float) -> None:
    _CLOCK.sleep(seconds)


def sleep_until(wake: float) -> None:
    _CLOCK.sleep_until(wake)


def wait_for(event: threading.Event, seconds: float | None) -> bool:
    return _CLOCK.wait_for(event, seconds)


def holding() -> contextlib.AbstractContextManager:
    return _CLOCK.holding()


def advance(seconds: float) -> None:
    _CLOCK.advance(seconds)


def alarm(when: float, callback: Callable[[], None]) -> None:
    _CLOCK.alarm(when, callback)


# --- how long things take ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Lifecycle:
    """Virtual seconds a resource spends queued and working, and where the figures come from."""

    pending: float  # CREATE PENDING / provisioning
    working: float  # CREATE IN_PROGRESS / InProgress
    deleting: float  # DELETE PENDING / IN_PROGRESS until gone
    source: str

    @property
    def ready_after(self) -> float:
        return self.pending + self.working


_SEED_000 = "shared/seeds 000 (Personalize on ML-1M): polls every 20-60 s with a 3 h bound"
_SEED_002 = "shared/seeds 002: an import job 'takes about ten-odd minutes'"
_SEED_001 = "shared/seeds 001: import and training 'add approximately 80 minutes'"
_CONSOLE = "typical console timings; the API reference says only 'wait until ACTIVE'"

DURATIONS: dict[str, Lifecycle] = {
    # Amazon Personalize (https://docs.aws.amazon.com/personalize/latest/dg/API_Operations.html)
    "personalize.datasetGroup": Lifecycle(15, 45, 60, _CONSOLE),
    "personalize.dataset": Lifecycle(15, 45, 60, _CONSOLE),
    "personalize.datasetImportJob": Lifecycle(60, 720, 0, _SEED_002),
    "personalize.filter": Lifecycle(15, 105, 60, _CONSOLE),
    "personalize.eventTracker": Lifecycle(15, 45, 60, _CONSOLE),
    "personalize.solution": Lifecycle(5, 25, 60, _CONSOLE),
    "personalize.solutionVersion": Lifecycle(300, 3300, 0, _SEED_001),
    "personalize.campaign": Lifecycle(60, 540, 300, _SEED_000),
    "personalize.recommender": Lifecycle(300, 3300, 300, _SEED_001),
    "personalize.batchInferenceJob": Lifecycle(300, 900, 0, _SEED_000),
    "personalize.metricAttribution": Lifecycle(15, 45, 60, _CONSOLE),
    "personalize.stop": Lifecycle(0, 120, 0, _CONSOLE),  # CREATE STOPPING, STOP/START PENDING
    # SageMaker: instance provisioning and image download come before the job's own work
    # (SecondaryStatus Starting / Downloading / Training / Uploading in
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html)
    "sagemaker.processingJob": Lifecycle(180, 120, 0, "Starting ~3 min on ml.m5 instances"),
    "sagemaker.trainingJob": Lifecycle(180, 300, 0, "Starting + Downloading ~3 min, then training"),
    "sagemaker.transformJob": Lifecycle(240, 120, 0, "model container start ~4 min"),
    "sagemaker.stop": Lifecycle(0, 60, 0, "Stopping: SIGTERM, then up to 120 s (StopTrainingJob)"),
}


def lifecycle(kind: str) -> Lifecycle:
    return DURATIONS[kind]
