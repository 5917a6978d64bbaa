"""Lambda invocations: concurrent environments, the function's timeout, the context's clock."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import site
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

import boto3
import botocore
import pytest
from botocore.config import Config

from localaws import lambda_runtime
from tests.localaws import functions, machines
from tests.localaws.fidelity import Behaviour, refused, rows

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


def _undeclared_package_fails_to_import(account) -> None:
    assert importlib.util.find_spec("pandas") is not None  # installed here, not in the zip
    function = functions.create(
        account, "import pandas\ndef handler(event, context):\n    return 1\n"
    )
    payload, error = functions.invoke(account, function)
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert payload["errorMessage"] == "Unable to import module 'app': No module named 'pandas'"


BOTO3_SOURCE = """
import boto3, botocore
def handler(event, context):
    boto3.client("s3").list_buckets()
    return [boto3.__version__, botocore.__version__]
"""


def _runtime_includes_boto3(account) -> None:
    (boto3_version, botocore_version), error = functions.invoke(
        account, functions.create(account, BOTO3_SOURCE)
    )
    assert error is None
    assert [boto3_version, botocore_version] == [boto3.__version__, botocore.__version__]


def _zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _create_from_zip(account, files: dict[str, str], runtime: str = "python3.12") -> str:
    return account.client("lambda").create_function(
        FunctionName=f"f-{uuid.uuid4().hex[:12]}",
        Runtime=runtime,
        Role=functions.role(account),
        Handler="app.handler",
        Code={"ZipFile": _zip_of(files)},
    )["FunctionArn"]


def _bundled_package_imports(account) -> None:
    files = {
        "tinypkg/__init__.py": "from tinypkg.words import GREETING\n",
        "tinypkg/words.py": "GREETING = 'hello from the zip'\n",
        "app.py": "import tinypkg\ndef handler(event, context):\n    return tinypkg.GREETING\n",
    }
    assert functions.invoke(account, _create_from_zip(account, files)) == (
        "hello from the zip",
        None,
    )


SYS_PATH_SOURCE = "import sys\ndef handler(event, context):\n    return sys.path\n"


def _sys_path_holds_no_dev_site_packages(account) -> None:
    path, error = functions.invoke(account, functions.create(account, SYS_PATH_SOURCE))
    assert error is None
    dev = [*site.getsitepackages(), site.getusersitepackages(), sys.prefix]
    assert not [entry for entry in path if any(entry.startswith(d) for d in dev)], path
    assert not [entry for entry in path if "site-packages" in entry], path
    assert [Path(entry).parent.name for entry in path[:2]] == [
        "localaws-lambda",  # the function's unpacked code
        "localaws-lambda-runtime",  # boto3 and its dependencies
    ]


_PYTHON_PACKAGE = (
    "https://docs.aws.amazon.com/lambda/latest/dg/python-package.html "
    "(Runtime dependencies in Python: dependencies other than the SDK go in the .zip or a layer; "
    "the runtime searches /var/task first, then includes the SDK for Python and its dependencies)"
)
_PYTHON_SDK = (
    "https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html "
    "(the code runs in an environment that includes the SDK for Python (Boto3))"
)

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
    Behaviour(
        "lambda-package-missing-from-the-zip-fails-to-import",
        _PYTHON_PACKAGE,
        _undeclared_package_fails_to_import,
    ),
    Behaviour("lambda-runtime-includes-boto3", _PYTHON_SDK, _runtime_includes_boto3),
    Behaviour(
        "lambda-package-bundled-in-the-zip-imports", _PYTHON_PACKAGE, _bundled_package_imports
    ),
    Behaviour(
        "lambda-sys-path-holds-the-code-the-runtime-and-the-standard-library-only",
        _PYTHON_PACKAGE,
        _sys_path_holds_no_dev_site_packages,
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


VERSION_SOURCE = "import sys\ndef handler(event, context):\n    return list(sys.version_info[:2])\n"


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13"])
def test_a_function_runs_on_its_runtime_python_when_pyenv_has_it(account, runtime):
    version = runtime.removeprefix("python")
    if lambda_runtime.interpreter(runtime)[1] is not None:
        pytest.skip(f"no Python {version} on this machine")
    function = _create_from_zip(account, {"app.py": VERSION_SOURCE}, runtime)
    assert functions.invoke(account, function) == ([int(n) for n in version.split(".")], None)


def test_a_function_without_its_python_runs_on_the_dev_one_and_its_log_says_so(
    account, monkeypatch
):
    monkeypatch.setattr(lambda_runtime, "_pyenv_python", lambda version: None)
    function = _create_from_zip(account, {"app.py": VERSION_SOURCE}, "python3.99")
    assert functions.invoke(account, function) == (list(sys.version_info[:2]), None)
    logs = functions.log_text(account, function.rsplit(":", 1)[-1])
    assert f"localaws runs python3.99 functions on Python {sys.version.split()[0]}" in logs


def test_a_non_python_runtime_fails_the_invocation_naming_it(account):
    function = account.client("lambda").create_function(
        FunctionName=f"f-{uuid.uuid4().hex[:12]}",
        Runtime="nodejs20.x",
        Role=functions.role(account),
        Handler="index.handler",
        Code={"ZipFile": _zip_of({"index.mjs": "export const handler = async () => 1;"})},
    )["FunctionArn"]
    region = account.client("lambda").meta.region_name
    once = boto3.client(
        "lambda", region_name=region, config=Config(retries={"total_max_attempts": 1})
    )
    refused(lambda: once.invoke(FunctionName=function), "InvalidRuntimeException", "nodejs20.x")
