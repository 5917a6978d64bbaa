"""Dataset groups: custom (no domain) or a VIDEO_ON_DEMAND / ECOMMERCE domain, optionally
encrypted with a KMS key (`kmsKeyArn` needs `roleArn`, a role Personalize assumes to use the key).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core import Family, InvalidStepInputError
from .core import ensure as _ensure

FAMILY = Family("DatasetGroup", arn_kind="dataset-group", compare_absent=("domain", "kmsKeyArn"))
DOMAINS = ("ECOMMERCE", "VIDEO_ON_DEMAND")


def ensure(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    params = event.get("params") or {}
    if params.get("domain") not in (None, *DOMAINS):
        raise InvalidStepInputError(
            f"dataset group {event.get('name')}: domain {params['domain']!r} is not one of "
            f"{DOMAINS} (leave it out for a custom dataset group)"
        )
    if params.get("kmsKeyArn") and not params.get("roleArn"):
        raise InvalidStepInputError(
            f"dataset group {event.get('name')}: kmsKeyArn needs roleArn, the role Personalize "
            "assumes to use the key"
        )
    return _ensure(client, FAMILY, event, arn_prefix)
