"""SageMaker jobs on the virtual clock: one record per job, read by Describe and List alike.

Gap closed (moto 5.2.5): a job's status, SecondaryStatus and timestamps are fixed at creation
(`Completed`, SecondaryStatus `Completed`, every time = the creation time); no job takes time,
stops, or runs out of MaxRuntimeInSeconds.

A job's life in virtual seconds (`clock.DURATIONS["sagemaker.<kind>Job"]`):

    created --pending--> start --working--> end            InProgress, then the outcome

The local computation (processing container, FM trainer, KNN transform) runs in a thread as soon
as the job is created and holds the clock while it computes (clock rule 3); its real seconds
count only when they exceed the job's `working` time. The job reads its outcome only when BOTH
the computation is done and virtual time has passed the end, and its outputs reach S3 only then
(as SageMaker uploads at the end of a job; a stopped transform job stores no output): when a
Describe/List or the watcher in sagemaker.py (a few times a real second) first sees it over.
Nothing moves the clock on a job's behalf (clock rule 4): a Step Functions `.sync` poll or
`clock.advance` does.

Ending early (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StopTrainingJob.html,
API_ProcessingStoppingCondition.html, API_DescribeTrainingJob.html):
- Stop*Job on an InProgress job: `Stopping`, the computation cancelled, `Stopped` after
  `sagemaker.stop` seconds; stopping any other job is a ValidationException
  ("The request was rejected because the training job is in status Completed.").
- MaxRuntimeInSeconds, counted from the start (after provisioning): a job whose work would end
  later is stopped at the limit the same way; a training job's SecondaryStatus then reads
  `MaxRuntimeExceeded`. A stopped job has no FailureReason.
- A failure of the computation ends the job `Failed` at start + the seconds it took.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from localaws import clock, s3

KINDS = ("processing", "training", "transform")
DOWNLOAD_SHARE = UPLOAD_SHARE = 0.1  # of a training job's working time: Downloading, Uploading
_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: it exceeded MaxRuntimeInSeconds",
}


class JobError(Exception):
    """A failure the job reports as its FailureReason (never an HTTP error)."""


def failure_reason(err: Exception) -> str:
    """FailureReason of a job the computation of which raised `err` (SageMaker's prefixes)."""
    text = str(err)
    if isinstance(err, JobError) or text.startswith(("ClientError", "AlgorithmError")):
        return text[:1024]
    return f"AlgorithmError: {type(err).__name__}: {text}"[:1024]


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return kind


class Faults:
    """Faults for the next SageMaker jobs of a kind; plain methods with JSON-able arguments."""

    def __init__(self) -> None:
        self._fail: dict[str, deque[str]] = {kind: deque() for kind in KINDS}
        self._slow: dict[str, deque[float]] = {kind: deque() for kind in KINDS}

    def fail_next(self, kind: str, reason: str = "ClientError: failed by localaws faults") -> None:
        """The next job of this kind runs its full duration, then ends Failed with `reason`."""
        self._fail[_check_kind(kind)].append(str(reason))

    def slow_next(self, kind: str, seconds: float) -> None:
        """The next job of this kind works `seconds` (virtual) longer than DURATIONS says."""
        if float(seconds) <= 0:
            raise ValueError("seconds must be positive")
        self._slow[_check_kind(kind)].append(float(seconds))

    def clear(self) -> None:
        for queue in (*self._fail.values(), *self._slow.values()):
            queue.clear()

    def pending(self) -> dict:
        """What is still armed, by kind (JSON-able)."""
        return {
            kind: {"fail": list(self._fail[kind]), "slow": list(self._slow[kind])} for kind in KINDS
        }

    def _take(self, kind: str) -> tuple[str | None, float]:
        """(failure reason, extra seconds) for the job created now; each fault is used once."""
        fail, slow = self._fail[kind], self._slow[kind]
        return (fail.popleft() if fail else None, slow.popleft() if slow else 0.0)


@dataclass(frozen=True)
class Outcome:
    status: str  # Completed | Failed | Cancelled (the computation was stopped)
    reason: str | None = None
    after: float = 0.0  # virtual seconds from start to the end of the work


@dataclass(frozen=True)
class Event:
    status: str  # the primary status from here on
    secondary: str  # SecondaryStatus (training jobs show it)
    at: float  # virtual epoch seconds


@dataclass(frozen=True)
class View:
    """What Describe*/List* show at one virtual instant."""

    status: str
    secondary: str
    created: float
    started: float | None
    ended: float | None
    last_modified: float
    failure_reason: str | None
    events: tuple[Event, ...]


def timestamp(seconds: float | None) -> datetime.datetime | None:
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds, datetime.UTC)


class JobRun:
    """One job's lifecycle: its durations, its computation's outcome, stop requests."""

    def __init__(
        self,
        kind: str,
        name: str,
        max_runtime: float | None = None,
        slower: float = 0.0,
    ) -> None:
        life = clock.lifecycle(f"sagemaker.{kind}Job")
        self.kind, self.name, self.max_runtime = kind, name, max_runtime
        self.created = clock.time()
        self.pending, self.working = life.pending, life.working + slower
        self.stop_seconds = clock.lifecycle("sagemaker.stop").working
        self.stop_requested: float | None = None
        self.cancel = threading.Event()
        self.outcome: Outcome | None = None
        self.request: dict = {}  # the Create*Job request, as sent
        self.metrics: dict[str, float] = {}  # a training job's final metrics
        self.thread: threading.Thread | None = None
        self._commit: Callable[[], None] | None = None
        self._discard: Callable[[], None] | None = None
        self._settled = False
        self._real_start = time.monotonic()
        self._lock = threading.RLock()

    @property
    def settled(self) -> bool:
        """Over, its outputs published or dropped: nothing about it changes any more."""
        return self._settled

    @property
    def start(self) -> float:
        return self.created + self.pending

    @property
    def limit(self) -> float | None:
        return None if self.max_runtime is None else self.start + self.max_runtime

    # --- the computation's side ------------------------------------------------------------------

    def cancelled(self) -> bool:
        """Stop work now: stopped by request, or MaxRuntimeInSeconds spent (real or virtual)."""
        if self.cancel.is_set():
            return True
        if self.max_runtime is None:
            return False
        spent = time.monotonic() - self._real_start
        return spent >= self.max_runtime or clock.time() >= self.start + self.max_runtime

    def finish(
        self,
        status: str,
        reason: str | None = None,
        commit: Callable[[], None] | None = None,
        discard: Callable[[], None] | None = None,
        after: float | None = None,
    ) -> None:
        """Record the computation's end; `commit` publishes its outputs once the job completes."""
        seconds = time.monotonic() - self._real_start
        if status == "Completed":
            after = max(self.working, seconds) if after is None else after
        elif after is None:
            after = max(seconds, 1.0)
        with self._lock:
            self.outcome = Outcome(status, reason, after)
            self._commit, self._discard = commit, discard

    def close(self, timeout: float = 10.0) -> None:
        """The account is going away: stop the computation, drop what it left behind."""
        self.cancel.set()
        if self.thread is not None:
            self.thread.join(timeout)
        with self._lock:
            if not self._settled and self._discard is not None:
                self._settled = True
                self._discard()

    # --- the API's side -----------------------------------------------------------------------

    def request_stop(self, now: float) -> None:
        """Stop*Job: only an InProgress job can be stopped."""
        with self._lock:
            status = self.view(now).status
            if status != "InProgress":
                raise JobError(
                    f"The request was rejected because the {self.kind} job is in status {status}."
                )
            self.stop_requested = now
            self.cancel.set()

    def view(self, now: float | None = None) -> View:
        now = clock.time() if now is None else now
        with self._lock:
            events = self._timeline(now)
            final = events[-1].status in ("Completed", "Failed", "Stopped")
            if final and not self._settled:
                self._settle(events[-1])
                events = self._timeline(now)
            last = events[-1]
            started = any(e.secondary == "Downloading" for e in events)
            return View(
                status=last.status,
                secondary=last.secondary,
                created=self.created,
                started=self.start if started else None,
                ended=last.at if last.status in ("Completed", "Failed", "Stopped") else None,
                last_modified=last.at,
                failure_reason=self.outcome.reason if last.status == "Failed" else None,
                events=tuple(events),
            )

    def _settle(self, final: Event) -> None:
        """Outputs reach S3 when the job is first seen Completed; otherwise they are dropped."""
        self._settled = True
        try:
            if final.status == "Completed" and self._commit is not None:
                self._commit()
        except Exception as err:  # an upload that fails fails the job, as in the service
            self.outcome = Outcome(
                "Failed", f"ClientError: uploading the output failed: {err}", self.outcome.after
            )
        finally:
            if self._discard is not None:
                self._discard()

    def _natural_end(self) -> float | None:
        """When the work ends if nothing stops it; None while the computation runs."""
        if self.outcome is None:
            return None
        if self.outcome.status == "Cancelled":
            return float("inf")
        return self.start + self.outcome.after

    def _stop(self, now: float, natural: float | None) -> tuple[float, str] | None:
        """(when, SecondaryStatus) of the stop that ends this job, if one does."""
        stops = []
        if self.stop_requested is not None:
            stops.append((self.stop_requested, "Stopped"))
        limit = self.limit
        if limit is not None and (natural > limit if natural is not None else now >= limit):
            stops.append((limit, "MaxRuntimeExceeded"))
        stop = min(stops, default=None)
        return stop if stop is not None and (natural is None or stop[0] < natural) else None

    def _timeline(self, now: float) -> list[Event]:
        natural = self._natural_end()
        download = self.start + DOWNLOAD_SHARE * self.working
        events = [
            Event("InProgress", "Starting", self.created),
            Event("InProgress", "Downloading", self.start),
            Event("InProgress", "Training", download),
        ]
        stop = self._stop(now, natural)
        if stop is not None:
            at, why = stop
            events = [e for e in events if e.at < at] + [Event("Stopping", "Stopping", at)]
            if now >= at:
                self.cancel.set()
            if self.outcome is not None:
                events.append(Event("Stopped", why, at + self.stop_seconds))
        elif natural is not None:
            if self.outcome.status == "Completed":
                upload = max(natural - UPLOAD_SHARE * self.working, download)
                events.append(Event("InProgress", "Uploading", upload))
            events = [e for e in events if e.at < natural]
            events.append(Event(self.outcome.status, self.outcome.status, natural))
        return [e for e in events if e.at <= now] or events[:1]

    def transitions(self, now: float) -> list[dict]:
        """SecondaryStatusTransitions of a training job, as DescribeTrainingJob lists them."""
        events = self.view(now).events
        rows = []
        for this, after in zip(events, (*events[1:], None), strict=True):
            row = {
                "Status": this.secondary,
                "StartTime": timestamp(this.at),
                "StatusMessage": _MESSAGES.get(this.secondary, this.secondary),
            }
            if after is not None or this.status in ("Completed", "Failed", "Stopped"):
                row["EndTime"] = timestamp(after.at if after is not None else this.at)
            rows.append(row)
        return rows


def job_inputs(account: str, uri: str) -> list[tuple[str, bytes]]:
    """(key, body) under a job's input URI; what is missing fails the job as SageMaker does."""
    try:
        objects = s3.objects_under(account, uri)
    except Exception as err:  # a missing bucket is the job's failure, not the API's
        raise JobError(f"ClientError: cannot read {uri}: {type(err).__name__}") from err
    if not objects:
        raise JobError(
            f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source.'
        )
    return objects
