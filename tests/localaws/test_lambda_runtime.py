"""Lambda invocations: concurrent environments, the function's timeout, the context's clock."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

from tests.localaws import functions, machines
from tests.localaws.fidelity import Behaviour, rows

STEP_SOURCE = """
import os, time
def handler(event, context):
    start = time.time()
    time.sleep(1.0)
    return {"start": start, "end": time.time(), "pid": os.getpid()}
"""

SLEEPER_SOURCE = """
import os, time
def handler(event, context):
    with open(event["pid_file"], "w") as out:
        out.write(str(os.getpid()))
    print("going to sleep")
    time.sleep(event["seconds"])
    print("WOKE UP AFTER THE TIMEOUT")
    return "finished"
"""

COUNTER_SOURCE = """
calls = 0
def handler(event, context):
    global calls
    calls += 1
    return calls
"""

REMAINING_SOURCE = """
import time
def handler(event, context):
    first = context.get_remaining_time_in_millis()
    time.sleep(0.3)
    return [first, context.get_remaining_time_in_millis()]
"""


def _overlap(intervals: list[dict]) -> bool:
    """Every interval starts before any of them ends."""
    return max(i["start"] for i in intervals) < min(i["end"] for i in intervals)


def _map_over_lambda_steps_overlaps(account) -> None:
    function = functions.create(account, STEP_SOURCE, Timeout=30)
    step = {"StartAt": "Step", "States": {"Step": machines.task(function)}}
    definition = {
        "StartAt": "Each",
        "States": {"Each": {"Type": "Map", "ItemsPath": "$.items", "Iterator": step, "End": True}},
    }
    described = machines.run(account, definition, {"items": [1, 2, 3]})
    assert described["status"] == "SUCCEEDED", described
    results = json.loads(described["output"])
    assert _overlap(results), results
    assert len({r["pid"] for r in results}) == 3  # one execution environment each


def _concurrent_invocations_get_their_own_environment(account) -> None:
    function = functions.create(account, STEP_SOURCE, Timeout=30)
    results: list[dict] = []
    threads = [
        threading.Thread(target=lambda: results.append(functions.invoke(account, function)[0]))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert _overlap(results), results
    assert results[0]["pid"] != results[1]["pid"]


def _timeout_ends_the_invocation(account) -> None:
    function = functions.create(account, SLEEPER_SOURCE, Timeout=1)
    pid_file = Path(tempfile.mkdtemp()) / "pid"
    started = time.monotonic()
    payload, error = functions.invoke(account, function, {"pid_file": str(pid_file), "seconds": 5})
    assert time.monotonic() - started < 4.5  # not the 5 s the handler asked for
    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Error: Task timed out after 1.00 seconds")
    _assert_gone(int(pid_file.read_text()))
    logs = functions.log_text(account, function.rsplit(":", 1)[-1])
    assert "going to sleep" in logs
    assert "Task timed out after 1.00 seconds" in logs
    assert "WOKE UP" not in logs


def _assert_gone(pid: int) -> None:
    """The process no longer exists (it was killed, so it can print nothing more)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    raise AssertionError(f"the timed-out handler's process {pid} is still running")


def _timeout_resets_the_environment(account) -> None:
    counter = functions.create(account, COUNTER_SOURCE + SLEEPER_SOURCE.replace("handler", "nap"))
    assert functions.invoke(account, counter)[0] == 1
    assert functions.invoke(account, counter)[0] == 2  # a warm start keeps module state
    account.client("lambda").update_function_configuration(
        FunctionName=counter, Timeout=1, Handler="app.nap"
    )
    pid_file = Path(tempfile.mkdtemp()) / "pid"
    _, error = functions.invoke(account, counter, {"pid_file": str(pid_file), "seconds": 5})
    assert error == "Unhandled"
    account.client("lambda").update_function_configuration(
        FunctionName=counter, Handler="app.handler"
    )
    assert functions.invoke(account, counter)[0] == 1  # a new environment after the timeout


def _remaining_time_counts_down(account) -> None:
    function = functions.create(account, REMAINING_SOURCE, Timeout=2)
    (first, second), error = functions.invoke(account, function)
    assert error is None
    assert 1000 < first <= 2000
    assert first - second >= 250


def _exception_is_an_unhandled_function_error(account) -> None:
    source = "def handler(event, context):\n    raise KeyError('missing')\n"
    payload, error = functions.invoke(account, functions.create(account, source))
    assert error == "Unhandled"
    assert payload["errorType"] == "KeyError"
    assert payload["errorMessage"] == "'missing'"
    assert any("app.py" in frame for frame in payload["stackTrace"])


def _init_errors_have_runtime_error_types(account) -> None:
    missing_module = functions.create(account, "import not_installed_anywhere\n")
    payload, error = functions.invoke(account, missing_module)
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert payload["errorMessage"].startswith("Unable to import module 'app': No module named")
    missing_handler = functions.create(account, "def other(event, context):\n    return 1\n")
    payload, _ = functions.invoke(account, missing_handler)
    assert payload["errorType"] == "Runtime.HandlerNotFound"
    assert payload["errorMessage"] == "Handler 'handler' missing on module 'app'"


_RUNTIME_PAGE = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html"
_PYTHON_RUNTIME = (
    "https://github.com/aws/aws-lambda-python-runtime-interface-client/blob/main/"
    "awslambdaric/bootstrap.py (the Python runtime's handler loading and error payloads)"
)

BEHAVIOURS = [
    Behaviour(
        "lambda-map-iterations-run-concurrently",
        "https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html "
        "(MaxConcurrency: 0 places no limit, iterations run in parallel)",
        _map_over_lambda_steps_overlaps,
    ),
    Behaviour(
        "lambda-concurrent-invocations-get-their-own-environment",
        "https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html "
        "(each concurrent request is served by a separate execution environment)",
        _concurrent_invocations_get_their_own_environment,
    ),
    Behaviour(
        "lambda-timeout-ends-the-invocation",
        "https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html; payload "
        "Sandbox.Timedout 'Task timed out after N.NN seconds' as Lambda's Invoke returns it",
        _timeout_ends_the_invocation,
    ),
    Behaviour(
        "lambda-timeout-resets-the-execution-environment",
        f"{_RUNTIME_PAGE} (a function that times out during Invoke: the environment is reset)",
        _timeout_resets_the_environment,
    ),
    Behaviour(
        "lambda-remaining-time-counts-down",
        "https://docs.aws.amazon.com/lambda/latest/dg/python-context.html "
        "(get_remaining_time_in_millis: milliseconds left before the execution times out)",
        _remaining_time_counts_down,
    ),
    Behaviour(
        "lambda-exception-is-an-unhandled-function-error",
        "https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html (FunctionError) and "
        "https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html",
        _exception_is_an_unhandled_function_error,
    ),
    Behaviour(
        "lambda-init-errors-have-runtime-error-types",
        f"https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-deployment.html; {_PYTHON_RUNTIME}",
        _init_errors_have_runtime_error_types,
    ),
]


@rows(*BEHAVIOURS)
def test_lambda_behaves_as_in_aws(account, behaviour):
    behaviour.check(account)


def test_a_timed_out_handler_prints_nothing_into_the_host(account, capfd):
    function = functions.create(account, SLEEPER_SOURCE, Timeout=1)
    pid_file = Path(tempfile.mkdtemp()) / "pid"
    functions.invoke(account, function, {"pid_file": str(pid_file), "seconds": 1.5})
    time.sleep(1.0)  # past the moment the handler would have woken up
    out, err = capfd.readouterr()
    assert "WOKE UP" not in out + err
    assert "going to sleep" not in out + err  # handler output goes to its log, never the host's


def test_warm_invocations_cost_milliseconds(account):
    function = functions.create(account, COUNTER_SOURCE)
    functions.invoke(account, function)  # cold: a process starts and imports the handler
    started = time.monotonic()
    for _ in range(5):
        functions.invoke(account, function)
    assert (time.monotonic() - started) / 5 < 0.25


def test_an_invocation_the_state_machine_gave_up_on_leaves_the_host_stdout_alone(account, capfd):
    function = functions.create(account, SLEEPER_SOURCE, Timeout=10)
    pid_file = Path(tempfile.mkdtemp()) / "pid"
    step = machines.task(function, {"pid_file": str(pid_file), "seconds": 2}, TimeoutSeconds=1)
    described = machines.run(account, {"StartAt": "Step", "States": {"Step": step}})
    assert described["status"] == "FAILED"  # States.Timeout; the function itself runs on
    print("the host still owns its stdout")
    out, _ = capfd.readouterr()
    assert "the host still owns its stdout" in out
    assert "going to sleep" not in out
