"""Event trackers: one per dataset group, for PutEvents; the outcome carries its trackingId.
Found by listing: the service gives the ARN a generated id, not the name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core import Family
from .core import ensure as _ensure

FAMILY = Family("EventTracker", parent="datasetGroupArn", extras=("trackingId",))


def ensure(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    return _ensure(client, FAMILY, event, arn_prefix)
