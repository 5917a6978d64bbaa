"""Run deployed Python Lambda functions in-process, from their code assets.

Gap closed (moto 5.2.5): `LambdaFunction._invoke_lambda` runs handlers only in Docker; with
`use_docker: False` moto echoes the event or returns canned results. Here the function's zip is
unpacked, its handler imported with the function's environment variables set, and its result
(or a Lambda-style error payload with errorMessage / errorType / stackTrace) returned, with the
log lines captured into CloudWatch Logs as Lambda would.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import sys
import tempfile
import threading
import traceback
import uuid
import zipfile
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction

from localaws import clock

_UNPACKED = Path(tempfile.gettempdir()) / "localaws-lambda"
# os.environ and sys.path are process-wide: one invocation at a time.
_LOCK = threading.RLock()
# Set by the server so handlers' boto3 calls reach it; None in-process (moto intercepts).
ENDPOINT_URL: str | None = None


class _Context:
    """The parts of the Lambda context object handlers commonly read."""

    def __init__(self, function: LambdaFunction):
        self.function_name = function.function_name
        self.function_version = str(function.version)
        self.invoked_function_arn = function.function_arn
        self.memory_limit_in_mb = str(function.memory_size)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = function.logs_group_name
        self.log_stream_name = f"localaws/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def unpack(code: bytes) -> Path:
    """The function's zip, unpacked once per content hash."""
    target = _UNPACKED / hashlib.sha256(code).hexdigest()[:16]
    if not target.exists():
        staging = Path(
            tempfile.mkdtemp(dir=_UNPACKED.parent if _UNPACKED.parent.exists() else None)
        )
        with zipfile.ZipFile(io.BytesIO(code)) as archive:
            archive.extractall(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # another thread unpacked it first
            staging.rename(target)
    return target


def _load_handler(code_dir: Path, handler: str):
    module_path, _, function_name = handler.rpartition(".")
    file = code_dir / (module_path.replace(".", "/") + ".py")
    if not file.exists():
        raise ImportError(f"Unable to import module '{module_path}': no {file.name} in the code")
    name = f"localaws_fn_{code_dir.name}_{module_path.replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, function_name):
        raise AttributeError(f"Handler '{function_name}' missing on module '{module_path}'")
    return getattr(module, function_name)


@contextlib.contextmanager
def _environment(variables: dict[str, str], code_dir: Path):
    saved = dict(os.environ)
    os.environ.update({k: str(v) for k, v in variables.items()})
    sys.path.insert(0, str(code_dir))
    try:
        yield
    finally:
        sys.path.remove(str(code_dir))
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _captured_output():
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        root.removeHandler(handler)


def function_environment(function: LambdaFunction) -> dict[str, str]:
    variables = {
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
        "AWS_REGION": function.region,
        "AWS_DEFAULT_REGION": function.region,
        "AWS_ACCESS_KEY_ID": "localaws",
        "AWS_SECRET_ACCESS_KEY": "localaws",
        "_HANDLER": function.handler or "",
    }
    if ENDPOINT_URL:
        variables["AWS_ENDPOINT_URL"] = ENDPOINT_URL
    variables.update(function.environment_vars or {})
    return variables


def invoke_in_process(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """(payload, errored, logs), the contract of LambdaFunction._invoke_lambda."""
    function.logs_backend.ensure_log_group(function.logs_group_name)
    if isinstance(event, str):
        event = json.loads(event) if event else {}
    with _LOCK, clock.holding():  # a running function is work: virtual time waits for it
        code_dir = unpack(function.code_bytes)
        with _environment(function_environment(function), code_dir), _captured_output() as out:
            try:
                handler = _load_handler(code_dir, function.handler)
                result = handler(event if event is not None else {}, _Context(function))
                payload, errored = json.dumps(result), False
            except Exception as err:  # the handler's failure becomes Lambda's error payload
                tb = traceback.format_exception(err)
                print("".join(tb), end="")
                payload = json.dumps(
                    {
                        "errorMessage": str(err),
                        "errorType": type(err).__name__,
                        "stackTrace": [line.rstrip() for line in tb[1:-1]],
                    }
                )
                errored = True
    logs = out.getvalue()
    function.save_logs(logs or "(no output)")
    return payload, errored, logs


def install() -> contextlib.AbstractContextManager:
    """Patch moto's Lambda to run handlers in-process for the duration of the context."""
    original = LambdaFunction._invoke_lambda

    @contextlib.contextmanager
    def patched():
        LambdaFunction._invoke_lambda = lambda self, event=None: invoke_in_process(self, event)
        try:
            yield
        finally:
            LambdaFunction._invoke_lambda = original

    return patched()
