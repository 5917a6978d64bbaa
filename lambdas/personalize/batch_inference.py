"""Batch inference jobs, run-owned (named with the execution's id): recommendations for every line
of `jobInput` written under `jobOutput`, with the optional filter, numResults and job config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core import Family
from .core import ensure as _ensure

FAMILY = Family(
    "BatchInferenceJob",
    arn_kind="batch-inference-job",
    parent="solutionVersionArn",
    defaults={"batchInferenceJobMode": "BATCH_INFERENCE"},
    compare_absent=("filterArn",),
)


def ensure(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    return _ensure(client, FAMILY, event, arn_prefix)
