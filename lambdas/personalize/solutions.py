"""Solutions, for every current custom recipe. HPO (`performHPO`, `solutionConfig.hpoConfig`) and
recipe options (`solutionConfig.algorithmHyperParameters`, `featureTransformationParameters`,
`eventValueThreshold`, `optimizationObjective`, `trainingDataConfig`, `eventsConfig`) are passed
through as asked. `performAutoTraining` is false unless the plan says otherwise: the service's
default retrains, and bills, every 7 days for as long as the solution exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import recipes
from .core import Family, recipe_name
from .core import ensure as _ensure

FAMILY = Family(
    "Solution",
    arn_kind="solution",
    parent="datasetGroupArn",
    defaults={
        "performAutoTraining": True,
        "performHPO": False,
        "performAutoML": False,
        "performIncrementalUpdate": False,
    },
    normalisers={"recipeArn": recipe_name},
    compare_absent=("eventType",),
)


def ensure(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    params = {"performAutoTraining": False, **(event.get("params") or {})}
    partition = recipes.partition_of(event.get("datasetGroupArn"))
    params["recipeArn"] = recipes.recipe_arn(params.get("recipeArn", ""), partition, recipes.CUSTOM)
    return _ensure(client, FAMILY, {**event, "params": params}, arn_prefix)
