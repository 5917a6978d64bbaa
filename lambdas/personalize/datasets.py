"""Datasets (interactions, users, items; actions and action interactions too): one of each type per
dataset group, under a schema. Found by listing: their ARN carries the dataset type, not the name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core import Family, InvalidStepInputError, upper
from .core import ensure as _ensure

FAMILY = Family("Dataset", parent="datasetGroupArn", normalisers={"datasetType": upper})
TYPES = ("INTERACTIONS", "USERS", "ITEMS", "ACTIONS", "ACTION_INTERACTIONS")


def ensure(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    kind = str((event.get("params") or {}).get("datasetType", "")).upper()
    if kind not in TYPES:
        raise InvalidStepInputError(
            f"dataset {event.get('name')}: datasetType must be one of {TYPES}"
        )
    return _ensure(client, FAMILY, event, arn_prefix)
