"""Every request checked against botocore's service model, on the server side, as AWS does.

Gap closed (moto 5.2.5): moto's JSON services take whatever they are sent. botocore's client
checks only required members, types and minimum lengths, and a request that arrives over HTTP
(the CDK CLI, the AWS CLI, `python -m localaws serve`) is not checked at all. Here one hook on
moto's request dispatch (`BaseResponse.call_action`) checks every request to the JSON and
rest-json services the product calls against the operation's input shape: required members,
types, `pattern`, `min`/`max` lengths and values, `enum`, list and map sizes. A failure is the
error the service returns for a bad request (`SERVICE_ERRORS`), worded as AWS words it:

    1 validation error detected: Value 'a b' at 'name' failed to satisfy constraint:
    Member must satisfy regular expression pattern: ^[a-zA-Z0-9][a-zA-Z0-9\\-_]*

Then the service rules the model does not carry run (`localaws.rules`: one declarative table per
rule, each with its AWS documentation page). An invalid `nextToken` is refused with the error the
operation declares (moto's paginator ignores it for Logs and EventBridge). Responses are checked
against the output shape (required members, types, enum values) when `CHECK_RESPONSES` is on,
which the local account turns on in tests: a gap in an emulated response fails loudly instead of
surfacing in the product's code. Personalize, which localaws serves itself, calls
`check_request` directly.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.session
import regex
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from moto.core.exceptions import JsonRESTError
from moto.core.responses import BaseResponse
from moto.utilities import paginator as moto_paginator

from localaws.patching import patched

_SESSION = botocore.session.get_session()

# The error each service returns for a request that breaks its model's constraints (the API
# reference's "Common errors" / the operation's declared errors).
SERVICE_ERRORS = {
    "personalize": "InvalidInputException",
    "personalize-runtime": "InvalidInputException",
    "sagemaker": "ValidationException",
    "stepfunctions": "ValidationException",
    "events": "ValidationException",
    "scheduler": "ValidationException",
    "logs": "InvalidParameterException",
}
# A value of the wrong JSON type never reaches the service's validation: the JSON protocols
# refuse it while deserialising.
TYPE_ERROR = "SerializationException"

# Where botocore's model is stricter or older than the service, or its pattern is written in a
# Java form Python cannot read: (service, shape name) -> why the constraint is not applied as is.
MODEL_EXCEPTIONS: dict[tuple[str, str], str] = {}
# Java's way of writing "any supplementary character" inside a class, as surrogate pairs.
_JAVA_PATTERN_FIXES = {r"\uD800\uDC00-\uDBFF\uDFFF": r"\U00010000-\U0010FFFF"}

CHECK_RESPONSES = False  # turned on by LocalAccount, so every test checks every response


class RequestRefusedError(Exception):
    """A request the service refuses: its error code and message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class ResponseShapeError(AssertionError):
    """An emulated response that lacks a required member or has one of the wrong type."""


@dataclass(frozen=True)
class Request:
    """What a rule may need to know about the request it judges."""

    service: str
    operation: str
    account: str
    region: str


_CURRENT: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "localaws_request", default=None
)


@functools.cache
def service_model(service: str):
    return _SESSION.get_service_model(service)


@functools.cache
def _pattern(text: str) -> regex.Pattern:
    for java, python in _JAVA_PATTERN_FIXES.items():
        text = text.replace(java, python)
    return regex.compile(text)


# --- the request walk ---------------------------------------------------------------------------


def _path_name(member: str) -> str:
    """AWS names a member in its messages with a lower-case first letter."""
    return member[:1].lower() + member[1:]


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _violation(value: Any, path: str, constraint: str) -> str:
    return (
        f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: Member must {constraint}"
    )


def _type_ok(shape: Shape, value: Any) -> bool:
    kind = shape.type_name
    if kind in ("structure", "map"):
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("integer", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("float", "double"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "timestamp":
        return isinstance(value, int | float | str | datetime.datetime)
    if kind == "blob":
        return isinstance(value, str | bytes | bytearray)
    return True


def _enum_errors(shape: Shape, value: Any, path: str) -> list[str]:
    """A string outside its enum: what requests and responses are both held to."""
    if shape.type_name != "string" or not shape.enum or not isinstance(value, str):
        return []
    if value in shape.enum:
        return []
    return [_violation(value, path, f"satisfy enum value set: [{', '.join(shape.enum)}]")]


def _constraints(service: str, shape: Shape, value: Any, path: str) -> list[str]:
    """The value's own constraints: pattern, enum, lengths or sizes, and value ranges."""
    if (service, shape.name) in MODEL_EXCEPTIONS:
        return []
    meta, errors = shape.metadata, []
    if (
        isinstance(value, str)
        and shape.type_name == "string"
        and "pattern" in meta
        and not _pattern(meta["pattern"]).fullmatch(value)
    ):
        errors.append(
            _violation(value, path, f"satisfy regular expression pattern: {meta['pattern']}")
        )
    errors += _enum_errors(shape, value, path)
    if isinstance(value, str | list | dict):
        size = len(value)
        noun = "length"
        if "min" in meta and size < meta["min"]:
            errors.append(
                _violation(value, path, f"have {noun} greater than or equal to {meta['min']}")
            )
        if "max" in meta and size > meta["max"]:
            errors.append(
                _violation(value, path, f"have {noun} less than or equal to {meta['max']}")
            )
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "min" in meta and value < meta["min"]:
            errors.append(
                _violation(value, path, f"have value greater than or equal to {meta['min']}")
            )
        if "max" in meta and value > meta["max"]:
            errors.append(
                _violation(value, path, f"have value less than or equal to {meta['max']}")
            )
    return errors


def request_errors(service: str, shape: Shape, value: Any, path: str = "") -> list[str]:
    """Every constraint of the shape the value breaks, AWS-worded; type errors raise."""
    if not _type_ok(shape, value):
        raise RequestRefusedError(
            TYPE_ERROR,
            f"Value at '{path}' is not a valid {shape.type_name}: {_show(value)!s:.100}",
        )
    errors = _constraints(service, shape, value, path)
    if isinstance(shape, StructureShape):
        for name in shape.required_members:
            if value.get(name) is None:
                member_path = f"{path}.{_path_name(name)}" if path else _path_name(name)
                errors.append(
                    f"Value null at '{member_path}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        for name, member in shape.members.items():
            if value.get(name) is not None:
                member_path = f"{path}.{_path_name(name)}" if path else _path_name(name)
                errors += request_errors(service, member, value[name], member_path)
    elif isinstance(shape, ListShape):
        for index, item in enumerate(value, start=1):
            errors += request_errors(service, shape.member, item, f"{path}.{index}.member")
    elif isinstance(shape, MapShape):
        for key, item in value.items():
            errors += request_errors(service, shape.key, key, f"{path}.{key}.key")
            errors += request_errors(service, shape.value, item, f"{path}.{key}.value")
    return errors


def validation_message(errors: list[str]) -> str:
    count = len(errors)
    return f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(errors)


def check_request(request: Request, params: dict) -> None:
    """Raise the service's error if the request breaks its model's constraints or a rule."""
    from localaws import rules  # the rules read backends, which import this module

    model = service_model(request.service)
    shape = model.operation_model(request.operation).input_shape
    if shape is not None:
        errors = request_errors(request.service, shape, params)
        if errors:
            raise RequestRefusedError(SERVICE_ERRORS[request.service], validation_message(errors))
    rules.check(request, params)


# --- responses ----------------------------------------------------------------------------------


def response_errors(shape: Shape, value: Any, path: str = "") -> list[str]:
    """Missing required members, wrongly typed values and strings outside their enum in a
    response, by path. Not patterns: botocore's output shapes share request shapes whose
    patterns do not fit (Personalize's `Arn` pattern on the IAM `roleArn` it returns)."""
    where = path or "(response)"
    if not _type_ok(shape, value):
        return [f"{where}: {type(value).__name__} where the model has {shape.type_name}"]
    errors = [f"{where}: {e}" for e in _enum_errors(shape, value, where)]
    if isinstance(shape, StructureShape):
        for name in shape.required_members:
            if value.get(name) is None and _in_body(shape.members[name]):
                errors.append(f"{path + '.' if path else ''}{name}: required, missing")
        for name, member in shape.members.items():
            if value.get(name) is not None:
                errors += response_errors(
                    member, value[name], f"{path + '.' if path else ''}{name}"
                )
    elif isinstance(shape, ListShape):
        for index, item in enumerate(value):
            errors += response_errors(shape.member, item, f"{path}[{index}]")
    elif isinstance(shape, MapShape):
        for key, item in value.items():
            errors += response_errors(shape.key, key, f"{path}[{key!r}] (key)")
            errors += response_errors(shape.value, item, f"{path}[{key!r}]")
    return errors


def _in_body(shape: Shape) -> bool:
    return shape.serialization.get("location") in (None, "body")


def integral_numbers(shape: Shape, value: Any) -> Any:
    """moto writes some integer members (epoch milliseconds) as floats; AWS sends whole numbers."""
    if shape.type_name in ("integer", "long") and isinstance(value, float):
        return int(value)
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return {
            k: integral_numbers(shape.members[k], v) if k in shape.members else v
            for k, v in value.items()
        }
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [integral_numbers(shape.member, v) for v in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {k: integral_numbers(shape.value, v) for k, v in value.items()}
    return value


def check_response(service: str, operation: str, body: dict) -> None:
    """Raise ResponseShapeError when the response does not fit the operation's output shape."""
    shape = service_model(service).operation_model(operation).output_shape
    if shape is None:
        return
    errors = response_errors(shape, body)
    if errors:
        raise ResponseShapeError(f"{service}.{operation} response: " + "; ".join(errors))


# --- the hook on moto's dispatch ----------------------------------------------------------------


def _operation(response: BaseResponse) -> OperationModel | None:
    service = response.boto3_service_name
    if service not in SERVICE_ERRORS:
        return None
    action = response._get_action()
    model = service_model(service)
    if not action or action not in model.operation_names:
        return None
    return model.operation_model(action)


def _params(response: BaseResponse, operation: OperationModel) -> dict:
    """The request's members as the wire carries them (rest-json: URI, query, headers, body)."""
    body = response.body or "{}"
    if isinstance(body, bytes):
        body = body.decode()
    params = json.loads(body) if body.strip() else {}
    if operation.service_model.protocol != "rest-json" or operation.input_shape is None:
        return params
    for name, member in operation.input_shape.members.items():
        where, wire = member.serialization.get("location"), member.serialization.get("name", name)
        if where == "uri" and wire in response.uri_match:
            params[name] = response.uri_match[wire]
        elif where == "querystring" and wire in response.querystring:
            params[name] = _typed(member, response.querystring[wire][0])
        elif where == "header" and wire in response.headers:
            params[name] = _typed(member, response.headers[wire])
    return params


def _typed(shape: Shape, text: str) -> Any:
    if shape.type_name in ("integer", "long"):
        with contextlib.suppress(ValueError):
            return int(text)
    if shape.type_name == "boolean":
        return text.lower() == "true"
    return text


def error_response(failure: RequestRefusedError) -> tuple[int, dict, str]:
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": failure.code}
    return failure.status, headers, json.dumps({"__type": failure.code, "message": failure.message})


_original_call_action = BaseResponse.call_action


def _call_action(self: BaseResponse):
    operation = _operation(self)
    if operation is None:
        return _original_call_action(self)
    service = self.boto3_service_name
    request = Request(service, operation.name, self.current_account, self.region)
    token = _CURRENT.set(request)
    try:
        check_request(request, _params(self, operation))
    except RequestRefusedError as failure:
        return error_response(failure)
    else:
        status, headers, body = _original_call_action(self)
    finally:
        _CURRENT.reset(token)
    if str(status).startswith("2") and operation.output_shape is not None and body:
        try:
            fixed = integral_numbers(operation.output_shape, json.loads(body))
        except ValueError:  # not a JSON body: nothing to fix or check
            return status, headers, body
        body = json.dumps(fixed)
        if CHECK_RESPONSES:
            check_response(service, operation.name, fixed)
    return status, headers, body


_original_dispatch = BaseResponse._dispatch


def _dispatch(self: BaseResponse, request, full_url=None, headers=None):
    """moto parses some services' requests before any action runs: a wrongly typed value there
    is the JSON protocols' SerializationException, not a crash."""
    try:
        self.setup_class(request, full_url, headers)
    except (ValueError, TypeError) as err:
        if self.boto3_service_name not in SERVICE_ERRORS:
            raise
        return error_response(RequestRefusedError(TYPE_ERROR, f"Cannot read the request: {err}"))
    return self.call_action()


def invalid_token_code(service: str, operation: str) -> str:
    """The operation's own token error if it declares one, else the service's validation error."""
    errors = service_model(service).operation_model(operation).error_shapes
    declared = [e.name for e in errors if "Token" in e.name]
    return declared[0] if declared else SERVICE_ERRORS[service]


def _refuse_token(self, token: Any) -> None:
    """moto's paginator, told to ignore a bad token for some services, refuses it as AWS does."""
    request = _CURRENT.get()
    if request is None:
        raise moto_paginator.InvalidToken("Invalid token")
    raise JsonRESTError(
        invalid_token_code(request.service, request.operation),
        f"The specified token is invalid: {token!s:.100}",
    )


_PATCHES = [
    (BaseResponse, "_dispatch", _dispatch),
    (BaseResponse, "call_action", _call_action),
    (moto_paginator.Paginator, "_raise_exception_if_required", _refuse_token),
]


@contextlib.contextmanager
def install(check_responses: bool = False) -> Iterator[None]:
    global CHECK_RESPONSES
    saved, CHECK_RESPONSES = CHECK_RESPONSES, check_responses
    try:
        with patched(_PATCHES):
            yield
    finally:
        CHECK_RESPONSES = saved
