"""Campaigns (opt-in: they bill every hour at the higher of real TPS and `minProvisionedTPS`,
which is 1 unless asked). A campaign outlives runs while its solution version changes with each
one, so `solutionVersionArn`, `minProvisionedTPS` and `campaignConfig` are changed in place with
UpdateCampaign; the outcome's status is then the update's (`latestCampaignUpdate.status`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core import Family
from .core import ensure as _ensure

UPDATABLE = ("solutionVersionArn", "minProvisionedTPS", "campaignConfig")
FAMILY = Family(
    "Campaign",
    arn_kind="campaign",
    parent="solutionVersionArn",
    defaults={"minProvisionedTPS": 1},
    updatable=UPDATABLE,
    update_status="latestCampaignUpdate",
)


def ensure(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    params = {"minProvisionedTPS": 1, **(event.get("params") or {})}
    return _ensure(client, FAMILY, {**event, "params": params}, arn_prefix)
