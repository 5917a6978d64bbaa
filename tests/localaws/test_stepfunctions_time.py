"""Step Functions takes the (virtual) time AWS takes: waits, backoff, timeouts, .sync polls."""

from __future__ import annotations

import datetime
import itertools
import os
import time

import pytest

from tests.localaws.fidelity import Behaviour, rows
from tests.localaws.machines import caught, create, finished, history, run, task, with_catcher

WAIT = "https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html"
ERRORS = "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html"
TASK = "https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html"
MACHINE = "https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html"
NESTED = "https://docs.aws.amazon.com/step-functions/latest/dg/connect-stepfunctions.html"
MISSING_OBJECT = ("arn:aws:states:::aws-sdk:s3:getObject", {"Bucket": "nobucket", "Key": "k"})


def _took(result: dict) -> float:
    return (result["stopDate"] - result["startDate"]).total_seconds()


def _spaced(gaps: list[float], intervals: list[float]) -> None:
    """Each retry came its interval after the previous try (plus the try's own real work)."""
    assert len(gaps) == len(intervals), gaps
    for gap, interval in zip(gaps, intervals, strict=True):
        assert interval - 0.5 <= gap <= interval + 5, (gaps, intervals)


def _wait(seconds: int) -> dict:
    return {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": seconds, "End": True}}}


def an_hour_wait_passes_in_virtual_time(account):
    real = time.monotonic()
    machine = create(account, _wait(3600))
    arn = account.client("stepfunctions").start_execution(stateMachineArn=machine)["executionArn"]
    result = finished(account, arn)
    assert time.monotonic() - real < 5  # 0.4 s on an idle machine; 2 busy cores take longer
    assert _took(result) == pytest.approx(3600, abs=2)
    events = {e["type"]: e["timestamp"] for e in history(account, arn)}
    waited = events["WaitStateExited"] - events["WaitStateEntered"]
    assert waited.total_seconds() == pytest.approx(3600, abs=2)


def timestamp_wait_is_utc_whatever_the_host_zone(account):
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"  # UTC+9: a local-time comparison is nine hours off
    time.tzset()
    try:
        until = account.clock.now() + datetime.timedelta(hours=2)
        definition = {
            "StartAt": "W",
            "States": {
                "W": {"Type": "Wait", "Timestamp": f"{until:%Y-%m-%dT%H:%M:%SZ}", "End": True}
            },
        }
        result = run(account, definition, timeout=30)
    finally:
        if saved is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = saved
        time.tzset()
    assert result["status"] == "SUCCEEDED"
    assert _took(result) == pytest.approx(7200, abs=3)


def retry_backoff_is_virtual_and_exponential(account):
    retry = [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 60, "BackoffRate": 2.0, "MaxAttempts": 3}
    ]
    state = task(*MISSING_OBJECT, Retry=retry, Catch=caught("States.ALL"), Next="Caught")
    machine = create(account, with_catcher(state))
    real = time.monotonic()
    arn = account.client("stepfunctions").start_execution(stateMachineArn=machine)["executionArn"]
    finished(account, arn)
    assert time.monotonic() - real < 10
    tries = [e["timestamp"] for e in history(account, arn) if e["type"] == "TaskScheduled"]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(tries)]
    _spaced(gaps, [60, 120, 240])


def retry_backoff_is_capped_by_max_delay(account):
    retry = [
        {
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": 60,
            "BackoffRate": 4.0,
            "MaxDelaySeconds": 100,
            "MaxAttempts": 3,
        }
    ]
    state = task(*MISSING_OBJECT, Retry=retry, Catch=caught("States.ALL"), Next="Caught")
    machine = create(account, with_catcher(state))
    arn = account.client("stepfunctions").start_execution(stateMachineArn=machine)["executionArn"]
    finished(account, arn)
    tries = [e["timestamp"] for e in history(account, arn) if e["type"] == "TaskScheduled"]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(tries)]
    _spaced(gaps, [60, 100, 100])


def task_timeout_is_virtual(account):
    queue = account.client("sqs").create_queue(QueueName="never-answered")["QueueUrl"]
    state = task(
        "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        TimeoutSeconds=10,
    )
    real = time.monotonic()
    result = run(account, {"StartAt": "T", "States": {"T": state}}, timeout=30)
    assert time.monotonic() - real < 10
    assert (result["status"], result["error"]) == ("FAILED", "States.Timeout")
    assert _took(result) == pytest.approx(10, abs=2)


def machine_timeout_is_virtual(account):
    definition = {"TimeoutSeconds": 60, **_wait(3600)}
    real = time.monotonic()
    result = run(account, definition, timeout=30)
    assert time.monotonic() - real < 10
    assert result["status"] == "TIMED_OUT"
    assert _took(result) == pytest.approx(60, abs=2)


def parallel_waits_overlap(account):
    branch = _wait(3600)
    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Parallel", "Branches": [branch] * 4, "End": True}},
    }
    result = run(account, definition, timeout=30)
    assert result["status"] == "SUCCEEDED"
    assert _took(result) == pytest.approx(3600, abs=3)  # one hour, not four


def sync_child_is_awaited_in_virtual_time(account):
    child = create(account, _wait(600))
    parent = {
        "StartAt": "Start",
        "States": {
            "Start": task(
                "arn:aws:states:::states:startExecution.sync:2", {"StateMachineArn": child}
            )
        },
    }
    real = time.monotonic()
    result = run(account, parent, timeout=60)
    assert time.monotonic() - real < 20  # 60 polls, 10 virtual seconds apart
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert 600 <= _took(result) <= 600 + 15  # the child's ten minutes, and at most one poll more


def execution_times_are_the_clock(account):
    account.clock.advance(86400)
    result = run(account, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    wall = datetime.datetime.now(datetime.UTC)
    assert (result["startDate"] - wall).total_seconds() == pytest.approx(86400, abs=30)


@rows(
    Behaviour("wait-hour-virtual", WAIT, an_hour_wait_passes_in_virtual_time),
    Behaviour("wait-timestamp-utc", WAIT, timestamp_wait_is_utc_whatever_the_host_zone),
    Behaviour("retry-backoff-virtual", ERRORS, retry_backoff_is_virtual_and_exponential),
    Behaviour("retry-max-delay", ERRORS, retry_backoff_is_capped_by_max_delay),
    Behaviour("task-timeout-virtual", TASK, task_timeout_is_virtual),
    Behaviour("machine-timeout-virtual", MACHINE, machine_timeout_is_virtual),
    Behaviour("parallel-waits-overlap", WAIT, parallel_waits_overlap),
    Behaviour("sync-child-virtual", NESTED, sync_child_is_awaited_in_virtual_time),
    Behaviour("execution-times-from-clock", WAIT, execution_times_are_the_clock),
)
def test_step_functions_time(account, behaviour):
    behaviour.check(account)
