"""Solution versions (one training run), run-owned: named with the execution's id, so a re-run of
one execution finds its version and a new execution trains anew. The service gives the ARN a
generated id and ListSolutionVersions no names, so an existing one is found by describing the
solution's versions, newest first. `trainingMode` FULL unless asked (UPDATE, for incremental).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core import Family, call
from .core import ensure as _ensure

FAMILY = Family("SolutionVersion", parent="solutionArn", defaults={"trainingMode": "FULL"})


def ensure(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    params = {"trainingMode": "FULL", **(event.get("params") or {})}
    return _ensure(client, FAMILY, {**event, "params": params}, arn_prefix)


def metrics(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    """GetSolutionMetrics of an ACTIVE version; writes nothing (the state machine stores them).
    A version not ACTIVE yet is a ResourceInUseException."""
    arn = event["solutionVersionArn"]
    response = call(client, "GetSolutionMetrics", {"solutionVersionArn": arn})
    return {"solutionVersionArn": arn, "metrics": response.get("metrics", {})}
