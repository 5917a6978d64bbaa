"""The custom resource protocol as CloudFormation runs it: asynchronous, answered on an https URL.

Gaps closed (moto 5.2.5): moto sends only `Create`, never `Update` or `Delete`; its ResponseURL
has no scheme; `AWS::CloudFormation::CustomResource` (CDK's default type) is skipped silently.
localaws before invoked the handler synchronously and required the answer before the handler
returned, so an answer sent later (from the end of a state machine) failed the stack.

Here, as in AWS (pages cited in localaws/README.md):
- the handler is invoked asynchronously (an `Event` invocation), with a pre-signed-style
  https:// ResponseURL on a loopback listener whose certificate the local Lambda runtime trusts
  (localaws/tls.py);
- CloudFormation waits for the answer until the resource's `ServiceTimeout` (1-3600 s, default
  3600) on the virtual clock, holding no lock, so an answer sent by anything, at any later time,
  completes the operation; no answer in time fails it with CloudFormation's message;
- an answer is checked as CloudFormation does: at most 4096 bytes, a non-empty
  PhysicalResourceId; `FAILED` fails the resource with "Received response status [FAILED] ...";
- property values reach the handler as strings (numbers and booleans too), as CloudFormation
  sends them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from moto.awslambda.utils import get_backend as get_lambda_backend

from localaws import clock, tls

LOG = logging.getLogger("localaws.custom_resources")

DEFAULT_TIMEOUT = 3600  # seconds; also the maximum (ServiceTimeout of the resource type)
MAX_RESPONSE_BYTES = 4096
NO_ANSWER = (
    "CloudFormation did not receive a response from your Custom Resource. Please check your "
    "logs for requestId [{request_id}]. If you are using the Python cfn-response module, you "
    "may need to update your Lambda function code so that CloudFormation can attach the "
    "updated version."
)
FAILED_ANSWER = (
    "Received response status [FAILED] from custom resource. Message returned: {reason} "
    "(RequestId: {request_id})"
)


class CustomResourceFailedError(RuntimeError):
    """The resource's operation failed; `physical_id` is what its answer named, if anything."""

    def __init__(self, reason: str, physical_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.physical_id = physical_id


@dataclass
class _Pending:
    """One request CloudFormation is waiting on."""

    answered: threading.Event = field(default_factory=threading.Event)
    answer: dict | None = None
    problem: str | None = None  # why the answer is not acceptable


class ResponseEndpoint:
    """The https listener behind every ResponseURL: stores the first answer of each request."""

    def __init__(self, authority: tls.LocalCA) -> None:
        self._secret = secrets.token_bytes(32)
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        endpoint, context = self, authority.server_context()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request, client_address) -> None:
                # The TLS handshake happens here, in the connection's own thread.
                with contextlib.suppress(OSError):
                    request = context.wrap_socket(request, server_side=True)
                    super().finish_request(request, client_address)

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status = endpoint._receive(self.path, self.rfile.read(length))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = Server((tls.HOSTS[0], 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),  # poll interval: how long shutdown() may take
            name="localaws-cfn-responses",
            daemon=True,
        )
        self._thread.start()

    def url(self, region: str, stack_id: str, logical_id: str, request_id: str) -> str:
        """A ResponseURL shaped as AWS's: bucket-like prefix, stack|logical id|request id, signed."""
        bucket = f"cloudformation-custom-resource-response-{region.replace('-', '')}"
        key = quote(f"{stack_id}|{logical_id}|{request_id}", safe="")
        path = f"/{bucket}/{key}"
        host, port = self._server.server_address[:2]
        return f"https://{host}:{port}{path}?Signature={self._sign(path)}"

    def expect(self, request_id: str) -> _Pending:
        with self._lock:
            pending = self._pending[request_id] = _Pending()
        return pending

    def forget(self, request_id: str) -> None:
        with self._lock:
            self._pending.pop(request_id, None)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _sign(self, path: str) -> str:
        return hmac.new(self._secret, path.encode(), hashlib.sha256).hexdigest()

    def _receive(self, raw_path: str, body: bytes) -> int:
        parts = urlsplit(raw_path)
        signature = parse_qs(parts.query).get("Signature", [""])[0]
        if not hmac.compare_digest(signature, self._sign(parts.path)):
            return 403  # as S3 answers a URL whose signature does not match
        request_id = unquote(parts.path.rsplit("/", 1)[-1]).rsplit("|", 1)[-1]
        with self._lock:
            pending = self._pending.get(request_id)
            if pending is None or pending.answered.is_set():
                return 200  # S3 stores it; nobody reads it any more
            pending.answer, pending.problem = _read_answer(body)
            pending.answered.set()
        return 200


def _read_answer(body: bytes) -> tuple[dict | None, str | None]:
    """The answer, and why CloudFormation would not accept it (None if it would)."""
    if len(body) > MAX_RESPONSE_BYTES:
        return None, "Response object is too long."
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("Status") not in ("SUCCESS", "FAILED"):
        # CloudFormation's own wording for this case is not documented.
        return None, "Invalid response object: Status must be SUCCESS or FAILED"
    physical_id = answer.get("PhysicalResourceId")
    if not isinstance(physical_id, str) or not physical_id:
        return answer, "Invalid PhysicalResourceId"
    return answer, None


_ENDPOINT: ResponseEndpoint | None = None


def service_timeout(properties: dict) -> float:
    """The resource's ServiceTimeout in seconds (an integer from 1 to 3600; 3600 by default)."""
    raw = properties.get("ServiceTimeout", DEFAULT_TIMEOUT)
    try:
        seconds = int(str(raw))
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= DEFAULT_TIMEOUT:
        raise CustomResourceFailedError(
            f"ServiceTimeout must be an integer from 1 to {DEFAULT_TIMEOUT} (got {raw!r})"
        )
    return float(seconds)


def as_sent(value: Any) -> Any:
    """Property values as CloudFormation passes them to a handler: every scalar as a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return {key: as_sent(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [as_sent(inner) for inner in value]
    return value


@dataclass(frozen=True)
class Target:
    """Which resource a request is about."""

    account: str
    region: str
    stack_id: str
    logical_id: str
    resource_type: str


def request(
    request_type: str,
    target: Target,
    properties: dict,
    physical_id: str | None = None,
    old_properties: dict | None = None,
) -> dict:
    """Send Create/Update/Delete and wait (virtual time) for the answer; the SUCCESS answer.

    Raises CustomResourceFailedError with CloudFormation's reason otherwise.
    """
    endpoint = _ENDPOINT  # this account's, even if it stops while we wait
    if endpoint is None:
        raise RuntimeError("custom resources need a running local account")
    timeout = service_timeout(properties)
    token = properties.get("ServiceToken", "")
    if ":lambda:" not in token:
        raise CustomResourceFailedError(
            f"localaws runs Lambda-backed custom resources only; ServiceToken is {token!r}"
        )
    request_id = str(uuid.uuid4())
    event = {
        "RequestType": request_type,
        "ServiceToken": token,
        "ResponseURL": endpoint.url(target.region, target.stack_id, target.logical_id, request_id),
        "StackId": target.stack_id,
        "RequestId": request_id,
        "LogicalResourceId": target.logical_id,
        "ResourceType": target.resource_type,
        "ResourceProperties": as_sent(properties),
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if old_properties is not None:
        event["OldResourceProperties"] = as_sent(old_properties)
    pending = endpoint.expect(request_id)
    try:
        _invoke_asynchronously(target, token, event)
        if not clock.wait_for(pending.answered, timeout):
            raise CustomResourceFailedError(NO_ANSWER.format(request_id=request_id))
    finally:
        endpoint.forget(request_id)
    return _accepted(pending, request_id)


def _accepted(pending: _Pending, request_id: str) -> dict:
    """The answer if CloudFormation takes it as SUCCESS; CustomResourceFailedError otherwise."""
    answer = pending.answer or {}
    named = answer.get("PhysicalResourceId") or None
    if pending.problem:
        raise CustomResourceFailedError(pending.problem, named)
    if answer["Status"] == "FAILED":
        reason = FAILED_ANSWER.format(reason=answer.get("Reason", ""), request_id=request_id)
        raise CustomResourceFailedError(reason, named)
    return answer


def _invoke_asynchronously(target: Target, token: str, event: dict) -> None:
    """An Event invocation in its own thread; returns once the invocation holds the clock."""
    backend = get_lambda_backend(target.account, target.region)
    try:
        backend.get_function(token)
    except Exception as err:  # an unknown function: nothing could ever answer
        raise CustomResourceFailedError(f"{type(err).__name__}: {err}") from err

    def invoke() -> None:  # work until the handler returns: it holds the clock from start()
        try:
            backend.invoke(token, None, json.dumps(event), {"x-amz-invocation-type": "Event"}, {})
        except Exception:  # an Event invocation's failure reaches only its logs
            LOG.exception("custom resource handler %s failed", token)

    clock.HoldingThread(
        target=invoke, name=f"localaws-cr-{event['RequestId'][:8]}", daemon=True
    ).start()


@contextlib.contextmanager
def install(authority: tls.LocalCA) -> Iterator[ResponseEndpoint]:
    """Serve ResponseURLs for the duration of the local account."""
    global _ENDPOINT
    _ENDPOINT = ResponseEndpoint(authority)
    try:
        yield _ENDPOINT
    finally:
        _ENDPOINT.close()
        _ENDPOINT = None
