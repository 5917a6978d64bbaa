"""One Lambda execution environment: a process that runs one function's Python handler.

Started by `lambda_runtime` (never imported by it, and importing nothing from `localaws`), with
the function's environment variables as its own, on an isolated interpreter (`-I -S`: the
standard library only), so it imports nothing but the standard library itself. It puts the
unpacked code (LAMBDA_TASK_ROOT) first on `sys.path`, as the Python runtime does with /var/task,
then the runtime's libraries (LAMBDA_RUNTIME_DIR: boto3 and its dependencies). It imports the
handler module first (the Init phase) and keeps it, and its module state, for every invocation
it is sent (warm starts).

Protocol: one JSON line once the Init phase ends (`{"ready": true}` or `{"error": payload}`), then
one JSON line per invocation on the control input (stdin when started) and one back on the
control output (stdout when started). Once started, file descriptors 0/1/2 are
rebound: the handler's stdout and stderr both go to the log file the runtime passed as stderr
(what Lambda sends to CloudWatch Logs), so nothing the handler prints can reach the caller's
terminal or corrupt the protocol. Each answer carries the log file offsets of its invocation.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any

_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"


class LambdaContext:
    """The context object of the Python runtime (the attributes and the one method)."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = request["invoked_function_arn"]
        self.aws_request_id = request["request_id"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds before the function's timeout ends this invocation."""
        return max(int(self._deadline_ms - time.time() * 1000), 0)


class _RequestIdFilter(logging.Filter):
    request_id = ""  # the invocation in progress (one at a time per environment)

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _RequestIdFilter.request_id
        return True


def _error(error_type: str, message: str, trace: list[str] | None = None) -> dict[str, Any]:
    """The error payload of the Python runtime (awslambdaric's `make_error`)."""
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": _RequestIdFilter.request_id,
        "stackTrace": trace or [],
    }


def _load_handler(handler: str):
    """The handler function, or the Init error payload Lambda's Python runtime reports."""
    module_name, _, function_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except SyntaxError as err:
        return None, _error(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {err}"
        )
    except ImportError as err:
        return None, _error(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {err}"
        )
    except Exception as err:  # module-level code failed: the Init phase fails
        trace = [line.rstrip() for line in traceback.format_tb(err.__traceback__)]
        return None, _error(type(err).__name__, str(err), trace)
    if not hasattr(module, function_name):
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        return None, _error("Runtime.HandlerNotFound", message)
    return getattr(module, function_name), None


def _invoke(handler, request: dict[str, Any]) -> tuple[str, bool]:
    try:
        result = handler(json.loads(request["event"]), LambdaContext(request))
        return json.dumps(result), False
    except Exception as err:  # the handler's failure becomes Lambda's error payload
        trace = traceback.format_list(traceback.extract_tb(err.__traceback__)[1:])
        print(f"[ERROR] {type(err).__name__}: {err}", file=sys.stderr)
        print("".join(traceback.format_exception(err)), end="", file=sys.stderr)
        return json.dumps(_error(type(err).__name__, str(err), trace)), True


def _log_offset() -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    return os.lseek(2, 0, os.SEEK_CUR)


def main() -> None:
    control_in = os.fdopen(os.dup(0), "rb")
    control_out = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)  # stdout and stderr: one log, one shared offset
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's stdout
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.path[:0] = [os.environ["LAMBDA_TASK_ROOT"], os.environ["LAMBDA_RUNTIME_DIR"]]
    request_ids = _RequestIdFilter()
    log_handler = logging.StreamHandler(sys.stdout)
    log_handler.setFormatter(logging.Formatter(_LOG_FORMAT, "%Y-%m-%dT%H:%M:%S"))
    log_handler.addFilter(request_ids)
    logging.getLogger().addHandler(log_handler)
    handler, init_error = _load_handler(os.environ["_HANDLER"])  # the Init phase
    if init_error:
        print(f"[ERROR] {init_error['errorType']}: {init_error['errorMessage']}", file=sys.stderr)
    _answer(control_out, {"error": init_error} if init_error else {"ready": True})
    if init_error:
        return
    for line in control_in:
        request = json.loads(line)
        _RequestIdFilter.request_id = request["request_id"]
        # Lambda sets the invocation's X-Ray trace header before each invoke; tracers (Powertools,
        # the X-Ray SDK) read it, and without it they log "worker still initializing" noise.
        os.environ["_X_AMZN_TRACE_ID"] = _trace_header()
        start = _log_offset()
        payload, errored = _invoke(handler, request)
        _answer(
            control_out, {"payload": payload, "errored": errored, "log": [start, _log_offset()]}
        )


def _trace_header() -> str:
    """A sampled-out X-Ray header in Lambda's format (Root=1-<8 hex time>-<24 hex>)."""
    import secrets
    import time

    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"


def _answer(control_out, answer: dict[str, Any]) -> None:
    control_out.write(json.dumps(answer).encode() + b"\n")
    control_out.flush()


if __name__ == "__main__":
    main()
