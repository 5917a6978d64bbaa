"""Dataset import jobs, run-owned: their name carries the execution's id, so a re-run of one
execution finds its job and a new execution imports again. FULL replaces the dataset's data,
INCREMENTAL appends (at most 1 GB per job); FULL unless asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core import Family
from .core import ensure as _ensure

FAMILY = Family(
    "DatasetImportJob",
    arn_kind="dataset-import-job",
    parent="datasetArn",
    defaults={"importMode": "FULL", "publishAttributionMetricsToS3": False},
)


def ensure(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    params = {"importMode": "FULL", **(event.get("params") or {})}
    return _ensure(client, FAMILY, {**event, "params": params}, arn_prefix)
