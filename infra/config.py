"""The pipeline config: one JSON file per deployment, validated before anything is synthesized.

Everything a deployment needs to know is read here once, into typed objects; constructs and
state-machine inputs take these objects, never raw dictionaries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

# Personalize resource names: <= 63 characters, ^[a-zA-Z0-9][a-zA-Z0-9\-_]*
ResourceName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$", max_length=40)]

CUSTOM_RECIPES = (
    "aws-user-personalization",
    "aws-user-personalization-v2",
    "aws-personalized-ranking",
    "aws-personalized-ranking-v2",
    "aws-similar-items",
    "aws-sims",
    "aws-popularity-count",
    "aws-trending-now",
)
DOMAIN_RECIPES = {
    "VIDEO_ON_DEMAND": (
        "aws-vod-because-you-watched-x",
        "aws-vod-more-like-x",
        "aws-vod-most-popular",
        "aws-vod-top-picks",
        "aws-vod-trending-now",
    ),
    "ECOMMERCE": (
        "aws-ecomm-customers-who-viewed-x-also-viewed",
        "aws-ecomm-frequently-bought-together",
        "aws-ecomm-popular-items-by-purchases",
        "aws-ecomm-popular-items-by-views",
        "aws-ecomm-recommended-for-you",
    ),
}
# Recipes whose output is a ranked list per user, so the offline holdout evaluation applies.
USER_RECIPES = (
    "aws-user-personalization",
    "aws-user-personalization-v2",
    "aws-popularity-count",
    "aws-trending-now",
)


class ConfigError(ValueError):
    """A config that cannot be deployed; the message names the file, the field and the fix."""


def _no_duplicates(where: str, names: list[str]) -> None:
    seen = {n for n in names if names.count(n) > 1}
    if seen:
        raise ValueError(f"{where}: names must be unique, repeated: {sorted(seen)}")


class _Model(BaseModel):
    # Unknown keys are typos more often than not: reject them instead of ignoring them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMap(_Model):
    """Source column names for the canonical Personalize fields."""

    user_id: str = "user_id"
    item_id: str = "item_id"
    timestamp: str | None = "timestamp"
    event_type: str | None = None
    event_value: str | None = None


class TableSource(_Model):
    """A table in the data bucket: one object or every object under a prefix."""

    path: str = Field(description="Key or prefix inside the data bucket, e.g. raw/ml-1m/")
    format: Literal["csv", "tsv", "parquet"] = "csv"
    columns: ColumnMap = Field(default_factory=ColumnMap)
    timestamp_unit: Literal["s", "ms", "date"] = Field(
        "s",
        description="Epoch seconds, epoch milliseconds, or a date string (YYYY-MM-DD).",
    )

    @field_validator("path")
    @classmethod
    def _relative_key(cls, value: str) -> str:
        if value.startswith(("s3://", "/")) or not value.strip():
            raise ValueError(
                "must be a key or prefix inside the stack's data bucket such as 'raw/ml-1m/', "
                "not an s3:// URI or absolute path (upload the data under raw/ first)"
            )
        return value


class MetadataSource(_Model):
    """Users or items metadata: the id column and the columns to import as features."""

    path: str
    format: Literal["csv", "tsv", "parquet"] = "csv"
    id_column: str
    categorical: list[str] = []
    numerical: list[str] = []


class DataConfig(_Model):
    interactions: TableSource
    users: MetadataSource | None = None
    items: MetadataSource | None = None


class Solution(_Model):
    name: ResourceName
    recipe: Literal[CUSTOM_RECIPES]  # type: ignore[valid-type]
    # Personalize retrains every 7 days by default, billed each time; off unless asked for.
    perform_auto_training: bool = False
    perform_hpo: bool = False


class Campaign(_Model):
    """A real-time endpoint: billed every hour while it exists."""

    name: ResourceName
    solution: str
    min_provisioned_tps: int = Field(1, ge=1, le=500)


class Recommender(_Model):
    """A domain recommender: billed every hour while it is ACTIVE."""

    name: ResourceName
    recipe: str
    min_recommendation_requests_per_second: int = Field(1, ge=1, le=500)


class BatchInference(_Model):
    solution: str
    num_results: int = Field(25, ge=1, le=500)


class Filter(_Model):
    name: ResourceName
    expression: str = Field(min_length=1, max_length=2500)


class PersonalizeConfig(_Model):
    enabled: bool = True
    domain: Literal["VIDEO_ON_DEMAND", "ECOMMERCE"] | None = None
    solutions: list[Solution] = []
    campaigns: list[Campaign] = []
    recommenders: list[Recommender] = []
    batch_inference: list[BatchInference] = []
    filters: list[Filter] = []
    event_tracker: bool = False

    @model_validator(mode="after")
    def _references_resolve(self) -> PersonalizeConfig:
        names = [s.name for s in self.solutions]
        _no_duplicates("personalize.solutions", names)
        _no_duplicates("personalize.campaigns", [c.name for c in self.campaigns])
        _no_duplicates("personalize.recommenders", [r.name for r in self.recommenders])
        _no_duplicates("personalize.filters", [f.name for f in self.filters])
        for where, ref in [("campaigns", c.solution) for c in self.campaigns] + [
            ("batch_inference", b.solution) for b in self.batch_inference
        ]:
            if ref not in names:
                raise ValueError(
                    f"personalize.{where} refers to solution {ref!r}, which is not defined; "
                    f"defined solutions: {names or 'none'}"
                )
        if self.recommenders and self.domain is None:
            raise ValueError(
                "personalize.recommenders need a domain dataset group: set personalize.domain "
                "to 'VIDEO_ON_DEMAND' or 'ECOMMERCE', or remove the recommenders"
            )
        allowed = DOMAIN_RECIPES.get(self.domain or "", ())
        for recommender in self.recommenders:
            if recommender.recipe not in allowed:
                raise ValueError(
                    f"personalize.recommenders[{recommender.name}].recipe {recommender.recipe!r} "
                    f"is not a {self.domain} recipe; allowed: {', '.join(allowed)}"
                )
        return self


class KnnConfig(_Model):
    k: int = Field(100, ge=1, le=1024)
    index_type: Literal["faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ"] = "faiss.Flat"
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    transform_instance_type: str = Field("ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")


class FactorizationMachinesConfig(_Model):
    """The SageMaker FM -> KNN workflow and the training-data preparation it starts from."""

    enabled: bool = True
    min_user_interactions: int = Field(5, ge=1)
    min_item_interactions: int = Field(10, ge=1)
    filter_until_stable: bool = False
    split: Literal["temporal_holdout", "leave_last_out"] = "temporal_holdout"
    target: Literal["regression", "binary", "implicit"] = "implicit"
    rating_threshold: float = 4.0
    negatives_per_positive: int = Field(4, ge=1, le=100)
    days_since_first: bool = True
    num_factors: int = Field(64, ge=1, le=1000)
    epochs: int = Field(50, ge=1, le=1000)
    mini_batch_size: int = Field(1000, ge=1)
    shard_records: int = Field(1_000_000, ge=1000)
    processing_instance_type: str = Field("ml.m5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    training_instance_type: str = Field("ml.c5.xlarge", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    training_instance_count: int = Field(1, ge=1, le=20)
    knn: KnnConfig = Field(default_factory=KnnConfig)


class EvaluationConfig(_Model):
    k_values: list[Annotated[int, Field(ge=1, le=500)]] = [5, 10, 25]
    holdout_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    exclude_seen: bool = False

    @field_validator("k_values")
    @classmethod
    def _sorted_unique(cls, values: list[int]) -> list[int]:
        if not values:
            raise ValueError("give at least one K, e.g. [5, 10, 25]")
        return sorted(set(values))


class PipelineConfig(_Model):
    """One deployment: its name prefix, its data, and the pipelines it runs."""

    prefix: str = Field(
        pattern=r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$",
        description="Lower-case name prefix for every resource (3-20 chars: a-z, 0-9, -).",
    )
    retain_data: bool = Field(
        False, description="Keep the buckets and their objects on cdk destroy."
    )
    kms_key_arn: str | None = Field(
        None, pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]{36}$"
    )
    data: DataConfig
    personalize: PersonalizeConfig = Field(default_factory=PersonalizeConfig)
    factorization_machines: FactorizationMachinesConfig = Field(
        default_factory=FactorizationMachinesConfig
    )
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @model_validator(mode="after")
    def _target_has_its_column(self) -> PipelineConfig:
        fm = self.factorization_machines
        if (
            fm.enabled
            and fm.target != "implicit"
            and not self.data.interactions.columns.event_value
        ):
            raise ValueError(
                f"factorization_machines.target {fm.target!r} needs ratings: map "
                "data.interactions.columns.event_value, or use target 'implicit'"
            )
        return self

    def prep_options(self) -> dict:
        """The options file of the training-data preparation job (training/prep.py)."""
        source, fm = self.data.interactions, self.factorization_machines
        columns = source.columns
        options = {
            "format": source.format,
            "columns": {
                "USER_ID": columns.user_id,
                "ITEM_ID": columns.item_id,
                "TIMESTAMP": columns.timestamp,
                "EVENT_TYPE": columns.event_type,
                "EVENT_VALUE": columns.event_value,
            },
            "timestamp_unit": source.timestamp_unit,
            "min_user_interactions": fm.min_user_interactions,
            "min_item_interactions": fm.min_item_interactions,
            "filter_until_stable": fm.filter_until_stable,
            "split": fm.split,
            "holdout_fraction": self.evaluation.holdout_fraction,
            "target": fm.target,
            "rating_threshold": fm.rating_threshold,
            "negatives_per_positive": fm.negatives_per_positive,
            "days_since_first": fm.days_since_first,
            "shard_records": fm.shard_records,
        }
        for kind in ("users", "items"):
            meta = getattr(self.data, kind)
            if meta is not None:
                options[kind] = meta.model_dump()
        return options


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a config file, or raise ConfigError saying what to change."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (pass -c config=PATH)") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from None
    return parse_config(raw, source=str(path))


def parse_config(raw: object, *, source: str = "<config>") -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"{source}: {err.error_count()} problem(s) in the pipeline config:"]
    for problem in err.errors(include_url=False):
        field = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        got = problem.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  - {field}: {message}{shown}")
    return "\n".join(lines)
