"""Domain recommenders (VIDEO_ON_DEMAND, ECOMMERCE dataset groups): a use case's recipe, trained
and served by the service; they bill while ACTIVE. `recommenderConfig` is changed in place with
UpdateRecommender; the outcome's status is then the update's (`latestRecommenderUpdate.status`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import recipes
from .core import Family, recipe_name
from .core import ensure as _ensure

FAMILY = Family(
    "Recommender",
    arn_kind="recommender",
    parent="datasetGroupArn",
    normalisers={"recipeArn": recipe_name},
    updatable=("recommenderConfig",),
    update_status="latestRecommenderUpdate",
)


def ensure(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    params = dict(event.get("params") or {})
    partition = recipes.partition_of(event.get("datasetGroupArn"))
    params["recipeArn"] = recipes.recipe_arn(params.get("recipeArn", ""), partition, recipes.DOMAIN)
    return _ensure(client, FAMILY, {**event, "params": params}, arn_prefix)
