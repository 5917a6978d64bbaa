"""Run deployed Python Lambda functions locally, each invocation in an execution environment.

Gaps closed (moto 5.2.5): `LambdaFunction._invoke_lambda` runs handlers only in Docker; with
`use_docker: False` moto echoes the event or returns canned results. Here each function's zip is
unpacked and its Python handler run in an execution environment of its own: a worker process
(`lambda_worker.py`) with the function's environment variables, its code first on `sys.path`, a
private TMPDIR, and its stdout/stderr going to the invocation's CloudWatch Logs stream.

What the handler can import is what Lambda's Python runtime holds, not the developer's venv: the
worker runs isolated (`python -I -S`: no site-packages, no user site, no PYTHON* variables) with
`sys.path` = the function's code, a runtime directory holding only boto3, botocore and their
dependencies (links into this venv, `RUNTIME_DISTRIBUTIONS`), then the standard library, so a
bundling mistake (a dependency missing from the zip) fails locally with `Runtime.ImportModuleError`
as it does on AWS. The interpreter is the function's Python version when pyenv has it; otherwise
the dev interpreter runs it and the function's log says so. A non-Python runtime cannot run here:
the invocation fails with `InvalidRuntimeException`, naming the runtime.

Why processes (the decision): os.environ, sys.path, sys.modules and sys.stdout are process-wide,
so handlers sharing the host process could only run one at a time (a Map over Lambda steps was
serial), and a thread cannot be stopped, so a timed-out handler kept running and printing into
the host's stdout. A process per environment gives each invocation its own environment, runs
invocations concurrently, and can be killed. As in Lambda, an environment is reused (warm start,
module state kept) by the next invocation of the same function configuration once it is free,
a concurrent invocation gets a new one, and a timeout or crash discards it. Handlers reach the
account through `AWS_ENDPOINT_URL`: the server's own port, or in-process (`LocalAccount`) a
loopback moto server over the same in-memory backends, started on the first invocation.

Behaviour, as in Lambda: the Init phase (importing the handler module) has its own 10-second
limit; the function's `Timeout` then bounds the invocation, which ends with
`{"errorType": "Sandbox.Timedout", "errorMessage": "RequestId: <id> Error: Task timed out after
N.NN seconds"}` and the environment is killed; `context.get_remaining_time_in_millis()` counts
down to that deadline; Init failures are `Runtime.ImportModuleError`, `Runtime.HandlerNotFound`,
`Runtime.UserCodeSyntaxError`; a process that dies is `Runtime.ExitError`. A running invocation
holds the virtual clock (`clock.holding()`), so virtual time passes at the real rate meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import io
import json
import logging
import math
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction

from localaws import clock, tls
from localaws.patching import patched

_UNPACKED = Path(tempfile.gettempdir()) / "localaws-lambda"
_WORKER = Path(__file__).with_name("lambda_worker.py")
# What Lambda's Python runtimes hold besides the standard library (and awslambdaric, which the
# worker stands in for): the SDK for Python and its dependencies.
RUNTIME_DISTRIBUTIONS = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
# Bytecode of the runtime's and functions' modules, kept out of their directories (the dev venv
# is not written to by other Python versions; /var/task is read-only in Lambda).
_PYCACHE = _UNPACKED.parent / "localaws-lambda-pycache"
INIT_LIMIT = 10.0  # seconds: Lambda's Init phase limit for on-demand functions
# Environments running at once; more invocations queue for a while, then run anyway.
CONCURRENCY = int(os.environ.get("LOCALAWS_LAMBDA_CONCURRENCY", "8"))
_QUEUE_PATIENCE = 5.0  # real seconds an invocation waits for a slot before running over the cap
# Set by the server so handlers' boto3 calls reach it; None in-process (a loopback server is used).
ENDPOINT_URL: str | None = None


def unpack(code: bytes) -> Path:
    """The function's zip, unpacked once per content hash."""
    target = _UNPACKED / hashlib.sha256(code).hexdigest()[:16]
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent))
        with zipfile.ZipFile(io.BytesIO(code)) as archive:
            archive.extractall(staging)
        try:
            staging.rename(target)
        except OSError:  # another thread unpacked it first
            shutil.rmtree(staging, ignore_errors=True)
    return target


def runtime_directory() -> Path:
    """A directory holding only the runtime's libraries: links into this venv's site-packages.

    Content-addressed and built once per machine, so its path, and the bytecode cached under
    that path in `_PYCACHE`, stay the same from one account to the next.
    """
    entries = _runtime_entries()
    digest = hashlib.sha256(json.dumps(sorted(entries.items())).encode()).hexdigest()[:16]
    target = _UNPACKED.parent / "localaws-lambda-runtime" / digest
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent))
        for name, source in entries.items():
            (staging / name).symlink_to(source)
        try:
            staging.rename(target)
        except OSError:  # another process built it first
            shutil.rmtree(staging, ignore_errors=True)
    return target


@functools.cache
def _runtime_entries() -> dict[str, str]:
    """Each runtime distribution's top-level modules, packages and metadata, by name."""
    entries = {}
    for name in RUNTIME_DISTRIBUTIONS:
        distribution = importlib.metadata.distribution(name)
        for top in {PurePosixPath(str(f)).parts[0] for f in distribution.files or []}:
            if top not in ("..", "__pycache__"):  # console scripts; this venv's bytecode
                entries[top] = str(Path(distribution.locate_file(top)).resolve())
    return entries


class UnsupportedRuntimeError(LambdaClientError):
    """Invoke's error for a runtime that cannot run (502, as Lambda answers)."""

    code = 502

    def __init__(self, runtime: str) -> None:
        message = f"The runtime {runtime} is not supported by localaws: it runs Python functions"
        super().__init__("InvalidRuntimeException", message)


def interpreter(runtime: str | None) -> tuple[str, str | None]:
    """The Python that runs functions of `runtime`, and the log warning when it is another."""
    version = (runtime or "").removeprefix("python")
    if version == f"{sys.version_info.major}.{sys.version_info.minor}":
        return sys.executable, None
    found = _pyenv_python(version)
    if found is not None:
        return found, None
    return (
        sys.executable,
        f"localaws runs {runtime} functions on Python {platform.python_version()}",
    )


@functools.cache
def _pyenv_python(version: str) -> str | None:
    """The newest pyenv-installed CPython `version` (e.g. "3.12"), if there is one."""
    if not re.fullmatch(r"\d+\.\d+", version):
        return None
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    releases = [p for p in root.glob(f"{version}.*") if re.fullmatch(r"\d+\.\d+\.\d+", p.name)]
    for release in sorted(
        releases, key=lambda p: [int(n) for n in p.name.split(".")], reverse=True
    ):
        executable = release / "bin" / f"python{version}"
        if os.access(executable, os.X_OK):
            return str(executable)
    return None


def function_environment(function: LambdaFunction, endpoint: str | None) -> dict[str, str]:
    """The variables Lambda sets for a function, then the function's own."""
    variables = {
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
        "AWS_LAMBDA_LOG_GROUP_NAME": function.logs_group_name,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.run_time or 'python'}",
        "AWS_REGION": function.region,
        "AWS_DEFAULT_REGION": function.region,
        "AWS_ACCESS_KEY_ID": "localaws",
        "AWS_SECRET_ACCESS_KEY": "localaws",
        "_HANDLER": function.handler or "",
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        # the developer's own AWS config and credentials stay out of the function
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    if endpoint:
        variables["AWS_ENDPOINT_URL"] = endpoint
    variables.update(tls.trust_environment())  # https:// ResponseURLs on loopback (tls.py)
    variables.update({k: str(v) for k, v in (function.environment_vars or {}).items()})
    return variables


def _iso_now() -> str:
    return clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ExecutionEnvironment:
    """One worker process for one function configuration; runs one invocation at a time."""

    def __init__(
        self,
        key: tuple,
        code_dir: Path,
        variables: dict[str, str],
        runtime: str | None = None,
    ) -> None:
        self.key = key
        self.tmp = tempfile.mkdtemp(prefix="localaws-lambda-tmp-")
        self.stream = f"{clock.now():%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        python, warning = interpreter(runtime)
        if warning:
            self.log.write(f"{warning}\n".encode())
            self.log.flush()
        variables = {
            **variables,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(runtime_directory()),
            "TMPDIR": self.tmp,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.stream,
        }
        started = time.monotonic()
        isolated = ["-I", "-S", "-X", f"pycache_prefix={_PYCACHE}"]  # see the module docstring
        self.process = subprocess.Popen(
            [python, *isolated, str(_WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=code_dir,
            env=variables,
            start_new_session=True,  # its own process group: a kill takes its children too
        )
        self._buffer = b""
        self.init = self._answer(INIT_LIMIT)
        self.init_ms = (time.monotonic() - started) * 1000
        self.init_logs = self.read_log(0)
        self.cold = True

    # --- talking to the worker -------------------------------------------------------------------

    def send(self, request: dict[str, Any]) -> None:
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()

    def _answer(self, timeout: float) -> dict[str, Any] | None:
        """The worker's next answer; None if it is late; {"exit": code} if it died."""
        deadline = time.monotonic() + timeout
        out = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([out], [], [], remaining)
            if ready:
                chunk = os.read(out, 1 << 16)
                if not chunk:
                    return {"exit": self.process.wait()}
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def invoke(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        self.send(request)
        return self._answer(timeout)

    def log_size(self) -> int:
        return os.fstat(self.log.fileno()).st_size

    def read_log(self, start: int, end: int | None = None) -> str:
        end = self.log_size() if end is None else end
        return os.pread(self.log.fileno(), max(end - start, 0), start).decode(errors="replace")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Kill the worker and everything it started, at once (Lambda resets the environment)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def close(self) -> None:
        self.stop()
        for stream in (self.process.stdin, self.process.stdout, self.log):
            with contextlib.suppress(OSError):
                stream.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Runtime:
    """The account's execution environments: reused when free, created when all are busy."""

    def __init__(self, endpoint: str | None = None) -> None:
        self._endpoint = endpoint
        self._server = None
        self._lock = threading.Lock()
        self._idle: dict[tuple, list[ExecutionEnvironment]] = {}
        self._busy: set[ExecutionEnvironment] = set()
        self._slots = threading.BoundedSemaphore(max(CONCURRENCY, 1))

    # --- the endpoint handlers call ----------------------------------------------------------------

    def endpoint(self) -> str:
        with self._lock:
            if self._endpoint is None:
                self._endpoint = self._start_loopback_server()
            return self._endpoint

    def _start_loopback_server(self) -> str:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
        self._server.start()
        _, port = self._server.get_host_and_port()
        # `localhost`, not 127.0.0.1: moto reads an IP host as a bucket name in some URLs
        return f"http://localhost:{port}"

    # --- environments --------------------------------------------------------------------------------

    def _key(self, function: LambdaFunction, variables: dict[str, str]) -> tuple:
        digest = hashlib.sha256(json.dumps(variables, sort_keys=True).encode()).hexdigest()
        return (
            function.function_arn,
            function.code_sha_256,
            function.handler,
            function.run_time,
            digest,
        )

    def _take(self, function: LambdaFunction) -> ExecutionEnvironment:
        variables = function_environment(function, self.endpoint())
        key = self._key(function, variables)
        stale: list[ExecutionEnvironment] = []
        with self._lock:
            for other in [k for k in self._idle if k[0] == key[0] and k != key]:
                stale += self._idle.pop(other)  # the function's code or configuration changed
            idle = self._idle.get(key, [])
            environment = idle.pop() if idle else None
        for old in stale:
            old.close()
        if environment is None or not environment.alive:
            code = unpack(function.code_bytes)
            environment = ExecutionEnvironment(key, code, variables, function.run_time)
        with self._lock:
            self._busy.add(environment)
        return environment

    def _give_back(self, environment: ExecutionEnvironment, reusable: bool) -> None:
        evicted = []
        with self._lock:
            self._busy.discard(environment)
            if reusable and environment.alive:
                self._idle.setdefault(environment.key, []).append(environment)
                evicted = self._beyond(2 * max(CONCURRENCY, 1))
            else:
                evicted = [environment]
        for old in evicted:
            old.close()

    def _beyond(self, limit: int) -> list[ExecutionEnvironment]:
        """Idle environments past `limit`, oldest first, taken out (called with the lock held)."""
        surplus = sum(len(envs) for envs in self._idle.values()) - limit
        taken = []
        for envs in self._idle.values():
            while envs and len(taken) < surplus:
                taken.append(envs.pop(0))
        return taken

    def close(self) -> None:
        with self._lock:
            everything = [e for envs in self._idle.values() for e in envs] + list(self._busy)
            self._idle.clear()
            self._busy.clear()
        for environment in everything:
            environment.close()
        if self._server is not None:  # werkzeug polls for shutdown every 0.5 s: not waited for
            threading.Thread(target=self._server.stop, name="localaws-lambda-endpoint-stop").start()

    # --- one invocation --------------------------------------------------------------------------------

    def invoke(self, function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        """(payload, errored, logs), the contract of LambdaFunction._invoke_lambda."""
        if not (function.run_time or "python").startswith("python"):
            raise UnsupportedRuntimeError(function.run_time)
        function.logs_backend.ensure_log_group(function.logs_group_name)
        request_id = str(uuid.uuid4())
        queued = self._slots.acquire(timeout=_QUEUE_PATIENCE)
        try:
            with clock.holding():  # a running function is work: virtual time waits for it
                payload, errored, logs = self._run(function, _as_json_text(event), request_id)
        finally:
            if queued:
                self._slots.release()
        function.save_logs(logs)
        return payload, errored, logs

    def _run(self, function: LambdaFunction, event: str, request_id: str) -> tuple[str, bool, str]:
        environment = self._take(function)
        outcome = _attempt(environment, function, event, request_id)
        logs = [
            environment.init_logs if environment.cold else "",
            f"START RequestId: {request_id} Version: {function.version}",
            outcome.logs,
            f"END RequestId: {request_id}",
            _report(request_id, function, environment, outcome),
        ]
        environment.cold = False
        self._give_back(environment, reusable=outcome.status == "ok")
        return outcome.payload, outcome.errored, "\n".join(x.rstrip("\n") for x in logs if x)


@dataclass(frozen=True)
class _Outcome:
    payload: str
    errored: bool
    status: str  # ok | timeout | error (as REPORT's Status)
    logs: str
    duration_ms: float | None = None


def _attempt(environment, function, event: str, request_id: str) -> _Outcome:
    """Send one invocation to the environment and read what became of it."""
    init = environment.init
    if init is None or "exit" in init or "error" in init:
        # the Init phase's output (the error line) is already in environment.init_logs
        return _Outcome(_init_failure(init, request_id), True, "error", "")
    timeout = float(function.timeout or 3)
    start, started = environment.log_size(), time.monotonic()
    request = {
        "event": event,
        "request_id": request_id,
        "invoked_function_arn": function.function_arn,
        "deadline_ms": (time.time() + timeout) * 1000,
    }
    answer = environment.invoke(request, timeout)
    duration = (time.monotonic() - started) * 1000
    if answer is None:  # timed out: the environment is reset, the handler stopped with it
        environment.stop()
        logs = environment.read_log(start).rstrip("\n")
        logs += f"\n{_iso_now()} {request_id} Task timed out after {timeout:.2f} seconds"
        return _Outcome(_timed_out(request_id, timeout), True, "timeout", logs, duration)
    if "exit" in answer:
        payload = _exited(request_id, answer["exit"])
        return _Outcome(payload, True, "error", environment.read_log(start), duration)
    logs = environment.read_log(*answer["log"])
    return _Outcome(answer["payload"], answer["errored"], "ok", logs, duration)


def _as_json_text(event: Any) -> str:
    if event is None or event == "":
        return "{}"
    if isinstance(event, bytes):
        return event.decode()
    return event if isinstance(event, str) else json.dumps(event)


def _error_payload(error_type: str, message: str) -> str:
    return json.dumps({"errorType": error_type, "errorMessage": message})


def _timed_out(request_id: str, timeout: float) -> str:
    message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
    return _error_payload("Sandbox.Timedout", message)


def _exited(request_id: str, code: int) -> str:
    reason = f"signal: {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    message = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
    return _error_payload("Runtime.ExitError", message)


def _init_failure(init: dict[str, Any] | None, request_id: str) -> str:
    if init is None:
        return _timed_out(request_id, INIT_LIMIT)
    if "exit" in init:
        return _exited(request_id, init["exit"])
    return json.dumps({**init["error"], "requestId": request_id})


def _report(request_id: str, function, environment, outcome: _Outcome) -> str:
    parts = [f"REPORT RequestId: {request_id}"]
    if outcome.duration_ms is not None:
        billed = math.ceil(outcome.duration_ms)
        parts += [f"Duration: {outcome.duration_ms:.2f} ms", f"Billed Duration: {billed} ms"]
    parts.append(f"Memory Size: {function.memory_size} MB")
    if environment.cold:
        parts.append(f"Init Duration: {environment.init_ms:.2f} ms")
    if outcome.status != "ok":
        parts.append(f"Status: {outcome.status}")
    return "\t".join(parts)


_RUNTIME: Runtime | None = None


def current() -> Runtime | None:
    """The installed runtime (None outside LocalAccount / the server)."""
    return _RUNTIME


_original_invoke = LambdaFunction.invoke


def _invoke_reporting_unhandled(self, body, request_headers, response_headers):
    """moto marks a function error `Handled`; Lambda reports every runtime error `Unhandled`."""
    result = _original_invoke(self, body, request_headers, response_headers)
    if "x-amz-function-error" in response_headers:
        response_headers["x-amz-function-error"] = "Unhandled"
    return result


@contextlib.contextmanager
def _installed() -> Iterator[Runtime]:
    global _RUNTIME
    runtime = Runtime(ENDPOINT_URL)
    _RUNTIME = runtime
    patches = [
        (LambdaFunction, "_invoke_lambda", lambda self, event=None: runtime.invoke(self, event)),
        (LambdaFunction, "invoke", _invoke_reporting_unhandled),
    ]
    try:
        with patched(patches):
            yield runtime
    finally:
        _RUNTIME = None
        runtime.close()


def install() -> contextlib.AbstractContextManager:
    """Run moto's Lambda functions in local execution environments for the context's duration."""
    return _installed()
