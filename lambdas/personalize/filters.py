"""Filters: an expression over a dataset group's data, used by campaigns and batch jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core import Family
from .core import ensure as _ensure

FAMILY = Family("Filter", arn_kind="filter", parent="datasetGroupArn")


def ensure(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    return _ensure(client, FAMILY, event, arn_prefix)
