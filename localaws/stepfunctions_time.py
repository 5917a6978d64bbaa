"""Step Functions on the account's virtual clock (localaws/clock.py).

Gaps closed (moto 5.2.5): the ASL interpreter waited in real time, so a one-hour Wait took an
hour and a poll bound could never run out in a test; and it read the host's clock:
- Wait `Seconds`/`SecondsPath` slept for real; `Timestamp`/`TimestampPath` compared the (UTC)
  timestamp with the host's *local* naive time, wrong by the host's UTC offset;
- Retry slept `IntervalSeconds × BackoffRate^n` (capped by `MaxDelaySeconds`, jittered as
  `JitterStrategy` says: moto computes the interval) for real;
- `TimeoutSeconds`, `HeartbeatSeconds` and the callback waits were real `Event.wait`s;
- `.sync` jobs were polled every 0.5 real seconds;
- execution and event timestamps (startDate, stopDate, history, `$$.State.EnteredTime`) were
  the host's time.

Here every one of those goes through the clock, following its integration rules: each thread
that runs an execution's logic (the execution, its program, a task's worker, a Map iteration, a
Parallel branch, a callback listener) holds the clock while it works, and waits only through the
clock (`sleep`, `sleep_until`, `wait_for`), so a Wait of an hour is an hour of virtual time that
passes as soon as nothing else is working, and N branches waiting an hour together take one hour.
Timestamps are `clock.now()`. `.sync` jobs are polled every SYNC_POLL_SECONDS virtual seconds
(Step Functions does not document its cadence; 10 s keeps a one-hour job to a few hundred polls).
Sources: https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html (Timestamp in UTC,
ISO-8601), https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
(Retry intervals, BackoffRate, MaxDelaySeconds, JitterStrategy; TimeoutSeconds, HeartbeatSeconds).
"""

from __future__ import annotations

import datetime
import threading
import types

from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.program import program
from moto.stepfunctions.parser.asl.component.state import state as asl_state
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    inline_iteration_component,
    job,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    map_run_record,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import (
    branch_worker,
    branches_decl,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.callback import callback
from moto.stepfunctions.parser.asl.eval.event import event_manager
from moto.stepfunctions.parser.backend import execution, execution_worker

from localaws import clock

SYNC_POLL_SECONDS = 10.0


class VirtualEvent(threading.Event):
    """An Event whose timed waits run on the virtual clock (and do not hold it)."""

    def wait(self, timeout: float | None = None) -> bool:
        return clock.wait_for(_RealWaits(self), timeout)


class _RealWaits:
    """The clock polls an event with short real waits: the plain Event's, not ours."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return threading.Event.wait(self.event, timeout)


HoldingThread = clock.HoldingThread  # holds from start(), so no jump slips in first


class _ClockDateTime(datetime.datetime):
    """`datetime.datetime` whose `now()` is the virtual clock's (naive or in `tz`, as asked)."""

    @classmethod
    def now(cls, tz: datetime.tzinfo | None = None) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(clock.time(), tz)


def _module_like(module: types.ModuleType, **replaced) -> types.ModuleType:
    shim = types.ModuleType(module.__name__)
    shim.__dict__.update(module.__dict__)
    shim.__dict__.update(replaced)
    return shim


THREADING = _module_like(threading, Thread=HoldingThread, Event=VirtualEvent)
DATETIME = _module_like(datetime, datetime=_ClockDateTime)
TIME = types.SimpleNamespace(sleep=lambda seconds: clock.sleep(seconds), time=lambda: clock.time())


# --- Wait --------------------------------------------------------------------------------------


class _Stopped:
    """An event-like view of "this execution (or branch) is no longer running"."""

    def __init__(self, env) -> None:
        self.env = env

    def is_set(self) -> bool:
        return not self.env.is_running()

    def wait(self, timeout: float | None = None) -> bool:
        threading.Event().wait(timeout)
        return self.is_set()


def wake_time(wait: WaitFunction, env) -> float:
    """Epoch seconds (virtual) at which a Wait state ends."""
    if isinstance(wait, Timestamp):
        wait.string.eval(env=env)
        text = env.stack.pop()
        moment = wait._from_timestamp_string(timestamp=text)
        if moment is None:
            raise FailureEventException(wait._create_failure_event(env, text))
        return moment.replace(tzinfo=datetime.UTC).timestamp()  # the timestamp is UTC
    return clock.time() + wait._get_wait_seconds(env=env)


def _wait_eval_body(self: WaitFunction, env) -> None:
    clock.wait_for(_Stopped(env), max(wake_time(self, env) - clock.time(), 0.0))


PATCHES = [
    (WaitFunction, "_eval_body", _wait_eval_body),
    (retrier_decl, "time", TIME),
    (state_task_service_callback, "time", TIME),
    (state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", SYNC_POLL_SECONDS),
    (state_task_service_callback, "threading", THREADING),
    (callback, "Event", VirtualEvent),
    (execute_state, "threading", THREADING),
    (execute_state, "Thread", HoldingThread),
    (execution_worker, "Thread", HoldingThread),
    (program, "threading", THREADING),
    (branch_worker, "threading", THREADING),
    (branches_decl, "threading", THREADING),
    (inline_iteration_component, "threading", THREADING),
    (job, "threading", THREADING),
    (event_manager, "datetime", DATETIME),
    (execution, "datetime", DATETIME),
    (parser_models, "datetime", DATETIME),
    (asl_state, "datetime", DATETIME),
    (branches_decl, "datetime", DATETIME),
    (map_run_record, "datetime", DATETIME),
]
