"""Faults and time from outside the process: `python -m localaws faults|clock ...`.

Gap closed: fault injection (throttling, a failed solution version, a failed or slow job) and the
virtual clock were reachable only in-process (`LocalAccount()`), so an end-to-end run through the
real CDK CLI against `python -m localaws serve` could not be made to fail on purpose. The server
answers `POST /moto-api/localaws/call` with `{"target": ..., "method": ..., "args": {...}}`, and
calls that method of the target if a caller may (`CALLABLE`: the clock only advances and tells
the time); the CLI posts it.

    python -m localaws faults personalize throttle calls=2
    python -m localaws faults personalize fail_next_solution_version reason="out of capacity"
    python -m localaws faults sagemaker fail_next kind=training reason="AlgorithmError: boom"
    python -m localaws clock advance seconds=3600
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any
from urllib import request as urllib_request

from moto.moto_api._internal import urls as moto_api_urls

from localaws import clock

PATH = "/moto-api/localaws/call"


# What a caller over HTTP may run on each target. The clock's other methods (close, sleep,
# holding, wait_for) belong to the process that owns it: run remotely they would stop time or
# block the server's request thread. A target not listed here offers its public methods (the
# fault tables, which exist only to be armed from outside).
CALLABLE = {"clock": ("advance", "time", "now")}


def _targets() -> dict[str, Callable[[], Any]]:
    from localaws import personalize, sagemaker

    targets: dict[str, Callable[[], Any]] = {
        "personalize": lambda: personalize.backend_for().faults,
        "clock": clock.current,
    }
    if hasattr(sagemaker, "FAULTS"):
        targets["sagemaker"] = lambda: sagemaker.FAULTS
    return targets


def _callable_names(target: str, obj: Any) -> list[str]:
    public = [n for n in dir(type(obj)) if not n.startswith("_") and callable(getattr(obj, n))]
    allowed = CALLABLE.get(target)
    return public if allowed is None else [n for n in public if n in allowed]


def methods(target: str) -> dict[str, str]:
    """The methods a caller may run on a target, with the first line of their docstrings."""
    obj = _targets()[target]()
    return {
        name: (getattr(obj, name).__doc__ or "").strip().split("\n")[0]
        for name in _callable_names(target, obj)
    }


def call(target: str, method: str, args: dict[str, Any]) -> Any:
    """Call an allowed method of a fault/clock target; ValueError naming what exists otherwise."""
    targets = _targets()
    if target not in targets:
        raise ValueError(f"unknown target {target!r}; one of {sorted(targets)}")
    allowed = methods(target)
    if method == "help":
        return allowed
    if method not in allowed:
        raise ValueError(f"{target} has no method {method!r}; one of {sorted(allowed)}")
    return getattr(targets[target](), method)(**args)


def _handle(request, full_url: str, headers) -> tuple[int, dict, str]:
    raw = getattr(request, "data", None) or getattr(request, "body", None) or b"{}"
    try:
        body = json.loads(raw)
        result = call(body["target"], body["method"], body.get("args") or {})
    except (ValueError, TypeError, KeyError) as err:
        return 400, {"Content-Type": "application/json"}, json.dumps({"error": str(err)})
    return 200, {"Content-Type": "application/json"}, json.dumps({"result": result}, default=str)


def post(endpoint: str, target: str, method: str, args: dict[str, Any]) -> Any:
    """The client side: ask a running server to call target.method(**args)."""
    data = json.dumps({"target": target, "method": method, "args": args}).encode()
    req = urllib_request.Request(  # noqa: S310 - the local server's own loopback URL
        f"{endpoint.rstrip('/')}{PATH}", data=data, method="POST"
    )
    req.add_header("Content-Type", "application/json")
    try:
        with urllib_request.urlopen(req, timeout=30) as answer:  # noqa: S310
            return json.loads(answer.read())["result"]
    except urllib_request.HTTPError as err:
        raise ValueError(json.loads(err.read()).get("error", str(err))) from None


def parse_args(pairs: list[str]) -> dict[str, Any]:
    """`name=value` pairs; values are JSON when they parse as JSON, strings otherwise."""
    args: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"expected name=value, got {pair!r}")
        try:
            args[name] = json.loads(value)
        except json.JSONDecodeError:
            args[name] = value
    return args


@contextlib.contextmanager
def install():
    """Serve the admin path on moto's server (moto_api's URL map is built from this dict)."""
    key = "{0}" + PATH + "$"
    moto_api_urls.url_paths[key] = _handle
    try:
        yield
    finally:
        moto_api_urls.url_paths.pop(key, None)
