"""The pipeline config: one JSON file per deployment, validated before anything is synthesized.

Everything a deployment needs to know is read here once, into typed objects; constructs,
contracts (`recops.contracts`) and the `recops` CLI take these objects, never raw dictionaries.
It lives in `recops/` so that the CDK app and the CLI share it (the CLI never imports `infra/`).
The JSON Schema exported from it (`config.schema.json`, `python -m recops.config`) checks
uploaded configs where pydantic is not available (the trigger Lambda).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from recops import instance_types, names

SCHEMA_FILE = Path(__file__).with_name("config.schema.json")

# What the user names (solutions, filters, campaigns, recommenders): the stack prefix and "--"
# come first, and the whole must fit Personalize's 63 characters (20 + 2 + 40 = 62).
RESOURCE_NAME_MAX = 40
RESOURCE_NAME_RULE = (
    f"1 to {RESOURCE_NAME_MAX} characters: letters, digits, '-' and '_', starting with a letter "
    "or digit"
)
_RESOURCE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]*")


def _resource_name(value: str) -> str:
    if len(value) > RESOURCE_NAME_MAX or not _RESOURCE_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid name: use {RESOURCE_NAME_RULE}")
    return value


ResourceName = Annotated[
    str,
    AfterValidator(_resource_name),
    Field(
        description=RESOURCE_NAME_RULE,
        json_schema_extra={
            "pattern": "^[a-zA-Z0-9][a-zA-Z0-9\\-_]*$",
            "minLength": 1,
            "maxLength": RESOURCE_NAME_MAX,
        },
    ),
]


def _instance_type(kind: str) -> Any:
    """A str field that accepts only the instance types SageMaker offers for this kind of job."""

    def check(value: str) -> str:
        problem = instance_types.problem(kind, value)
        if problem:
            raise ValueError(problem)
        return value

    return Annotated[
        str,
        AfterValidator(check),
        Field(
            description=f"An instance type SageMaker offers for {kind} jobs.",
            json_schema_extra={"enum": list(instance_types.offered(kind))},
        ),
    ]


ProcessingInstanceType = _instance_type("processing")
TrainingInstanceType = _instance_type("training")
TransformInstanceType = _instance_type("transform")

KMS_KEY_RULE = (
    "the ARN of a KMS key: arn:<partition>:kms:<region>:<12-digit account>:key/<key id>, where "
    "the key id is a UUID, or mrk- and 32 hex digits for a multi-Region key (not an alias ARN)"
)
_KMS_KEY_ARN = (
    r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/"
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)

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
# Recipes whose output is a ranked list per user, so the offline holdout evaluation applies
# and a batch job can take the holdout users as its input.
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
    timestamp: str = Field(
        "timestamp",
        description="Required: the temporal holdout and Personalize's interactions need it.",
    )
    event_type: str | None = None
    event_value: str | None = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp_is_required(cls, value: object) -> object:
        if value is None or value == "":
            raise ValueError(
                "interactions need a timestamp column: the temporal holdout splits each user's "
                "history by time and Personalize's interactions dataset requires TIMESTAMP; map "
                "data.interactions.columns.timestamp to the column holding the event time"
            )
        return value


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


AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class MetadataSource(_Model):
    """Users or items metadata: the id column and the columns to import as features."""

    path: str
    format: Literal["csv", "tsv", "parquet"] = "csv"
    id_column: str
    categorical: list[str] = []
    numerical: list[str] = []

    @field_validator("categorical", "numerical")
    @classmethod
    def _schema_field_names(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if not AVRO_NAME.fullmatch(v)]
        if bad:
            raise ValueError(
                f"{bad}: these columns become fields of the Personalize schema, whose names are "
                "letters, digits and '_', not starting with a digit; rename the columns"
            )
        return values


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
    solution_config: dict[str, Any] | None = Field(
        None,
        description="Passed through as CreateSolution's solutionConfig (HPO ranges, recipe "
        "hyperparameters, autoTrainingConfig...), in the API's own camelCase members.",
    )

    @field_validator("solution_config")
    @classmethod
    def _api_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            problems = _botocore_problems("personalize", "SolutionConfig", value)
            if problems:
                raise ValueError(f"does not fit Personalize's SolutionConfig: {problems}")
        return value


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
    # The evaluation removes the items each user has already seen before cutting to K, so the
    # batch job must return more than the largest K; 500 is the service's maximum.
    num_results: int = Field(100, ge=1, le=500)
    filter: str | None = Field(None, description="The name of one of personalize.filters.")


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
        _no_duplicates(
            "personalize.batch_inference (solution-filter pairs)",
            [f"{b.solution}-{b.filter}" if b.filter else b.solution for b in self.batch_inference],
        )
        recipes = {s.name: s.recipe for s in self.solutions}
        filters = [f.name for f in self.filters]
        for index, batch in enumerate(self.batch_inference):
            if recipes[batch.solution] not in USER_RECIPES:
                raise ValueError(
                    f"personalize.batch_inference.{index}: solution {batch.solution!r} uses "
                    f"{recipes[batch.solution]}, which does not recommend items for a user, and "
                    "the batch job's input is the holdout users; batch-infer only solutions "
                    f"with one of {', '.join(USER_RECIPES)}, or remove this entry"
                )
            if batch.filter is not None and batch.filter not in filters:
                raise ValueError(
                    f"personalize.batch_inference.{index}.filter refers to filter "
                    f"{batch.filter!r}, which is not defined; defined filters: {filters or 'none'}"
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


KNN_DOC = "https://docs.aws.amazon.com/sagemaker/latest/dg/kNN_hyperparameters.html"


class KnnConfig(_Model):
    k: int = Field(100, ge=1, le=1024)
    index_type: Literal["faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ"] = "faiss.Flat"
    instance_type: TrainingInstanceType = "ml.m5.large"
    transform_instance_type: TransformInstanceType = "ml.m5.large"
    transform_instance_count: int = Field(1, ge=1, le=20)

    @field_validator("index_type")
    @classmethod
    def _inner_product_index(cls, value: str) -> str:
        if value == "faiss.IVFPQ":
            raise ValueError(
                "faiss.IVFPQ does not support the INNER_PRODUCT metric that ranks FM items for "
                f"a user ({KNN_DOC}); use faiss.Flat (exact) or faiss.IVFFlat (approximate)"
            )
        return value


SPOT_WAIT_LIMIT = 3600
SPOT_DOC = "https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html"


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
    processing_instance_type: ProcessingInstanceType = "ml.m5.xlarge"
    training_instance_type: TrainingInstanceType = "ml.c5.xlarge"
    training_instance_count: int = Field(1, ge=1, le=20)
    volume_size_gb: int = Field(
        30, ge=1, le=16384, description="Storage of each processing and training instance."
    )
    max_runtime_seconds: int = Field(
        3600,
        ge=60,
        le=5 * 24 * 3600,
        description="FM and KNN training jobs' MaxRuntimeInSeconds: a job running longer is "
        "stopped (processing jobs have 3 hours).",
    )
    spot: bool = Field(
        False,
        description="Managed spot training for FM and KNN (cheaper; may wait for capacity).",
    )
    max_wait_seconds: int | None = Field(
        None,
        ge=60,
        le=5 * 24 * 3600,
        description="Spot only: how long a training job may wait for spot capacity plus run "
        "(default and at most 3600: built-in algorithms without checkpoints; at least "
        "max_runtime_seconds).",
    )
    knn: KnnConfig = Field(default_factory=KnnConfig)

    @model_validator(mode="after")
    def _spot_wait_covers_the_runtime(self) -> FactorizationMachinesConfig:
        if self.max_wait_seconds is not None and not self.spot:
            raise ValueError("max_wait_seconds applies to spot training only: set spot true")
        if self.max_wait_seconds is not None and self.max_wait_seconds < self.max_runtime_seconds:
            raise ValueError(
                f"max_wait_seconds {self.max_wait_seconds} is below max_runtime_seconds "
                f"{self.max_runtime_seconds}: SageMaker requires MaxWaitTimeInSeconds >= "
                "MaxRuntimeInSeconds for spot training"
            )
        if self.spot and self.max_runtime_seconds > SPOT_WAIT_LIMIT:
            raise ValueError(
                f"spot training of FM and KNN (built-in algorithms without checkpoints) may wait "
                f"and run at most {SPOT_WAIT_LIMIT} s in all ({SPOT_DOC}): lower "
                f"max_runtime_seconds {self.max_runtime_seconds} to {SPOT_WAIT_LIMIT} or less, "
                "or set spot false"
            )
        if self.max_wait_seconds is not None and self.max_wait_seconds > SPOT_WAIT_LIMIT:
            raise ValueError(
                f"max_wait_seconds {self.max_wait_seconds} is above {SPOT_WAIT_LIMIT}, the limit "
                f"for built-in algorithms without checkpoints ({SPOT_DOC})"
            )
        return self

    @property
    def spot_wait_seconds(self) -> int:
        return self.max_wait_seconds or SPOT_WAIT_LIMIT


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


# What EventBridge Scheduler accepts for a recurring schedule (one-time at() is not a retraining).
_SCHEDULE = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+( \S+){5}\))$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class NotificationsConfig(_Model):
    """Who hears how a run ended. Every run notifies the stack's SNS topic and EventBridge."""

    email: str | None = Field(
        None,
        description="An address subscribed to the run notifications (it must confirm the "
        "subscription e-mail SNS sends after deploy).",
        json_schema_extra={"pattern": _EMAIL},
    )

    @field_validator("email")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(_EMAIL, value):
            raise ValueError("must be one e-mail address such as ml-team@example.com")
        return value


class RetrainingConfig(_Model):
    """Re-import the data and retrain on a schedule (each run is billed like one started by hand)."""

    schedule: str = Field(
        description="An EventBridge Scheduler expression: rate(7 days) or cron(0 3 ? * SUN *).",
        json_schema_extra={"pattern": _SCHEDULE},
    )
    timezone: str = Field("UTC", description="The IANA time zone of a cron() schedule.")

    @field_validator("schedule")
    @classmethod
    def _an_expression(cls, value: str) -> str:
        if not re.fullmatch(_SCHEDULE, value):
            raise ValueError(
                "use rate(<n> minutes|hours|days), e.g. rate(7 days), or a six-field "
                "cron(minutes hours day-of-month month day-of-week year), e.g. "
                "cron(0 3 ? * SUN *)"
            )
        return value


class PipelineConfig(_Model):
    """One deployment: its name prefix, its data, and the pipelines it runs."""

    prefix: str = Field(
        description=f"The stack's name and the start of every resource name: {names.PREFIX_RULE}.",
        json_schema_extra={
            "pattern": "^(?!.*--)[a-z][a-z0-9-]*[a-z0-9]$",
            "minLength": names.PREFIX_MIN,
            "maxLength": names.PREFIX_MAX,
        },
    )
    retain_data: bool = Field(
        False, description="Keep the buckets and their objects on cdk destroy."
    )
    kms_key_arn: str | None = Field(
        None, description=KMS_KEY_RULE, json_schema_extra={"pattern": _KMS_KEY_ARN}
    )
    data: DataConfig
    personalize: PersonalizeConfig = Field(default_factory=PersonalizeConfig)
    factorization_machines: FactorizationMachinesConfig = Field(
        default_factory=FactorizationMachinesConfig
    )
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    retraining: RetrainingConfig | None = Field(
        None, description="Scheduled re-import and retraining; off unless set."
    )

    @field_validator("prefix")
    @classmethod
    def _prefix_in_words(cls, value: str) -> str:
        return names.check_prefix(value)

    @field_validator("kms_key_arn")
    @classmethod
    def _kms_key(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(_KMS_KEY_ARN, value):
            raise ValueError(f"use {KMS_KEY_RULE}")
        return value

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

    @model_validator(mode="after")
    def _personalize_fits_the_data(self) -> PipelineConfig:
        personalize = self.personalize
        if personalize.domain and not self.data.interactions.columns.event_type:
            raise ValueError(
                f"personalize.domain {personalize.domain!r}: a domain dataset group's "
                "interactions need an EVENT_TYPE column; map data.interactions.columns."
                "event_type, or remove personalize.domain (and its recommenders)"
            )
        for item in personalize.filters:
            problem = _filter_problem(item.expression, self.data)
            if problem:
                raise ValueError(f"personalize.filters[{item.name}].expression: {problem}")
        largest_k = max(self.evaluation.k_values)
        for index, batch in enumerate(personalize.batch_inference):
            if batch.num_results < largest_k:
                raise ValueError(
                    f"personalize.batch_inference.{index}.num_results {batch.num_results} is "
                    f"below the largest evaluation K ({largest_k}): raise num_results (the "
                    "default 100 leaves room for removing seen items) or lower evaluation.k_values"
                )
        return self


# A filter reads fields of a dataset: Interactions (event type only), Items, Users, and the
# item or user a request is about.
_FILTER_FIELD = re.compile(r"\b(Interactions|Items|Users|CurrentItem|CurrentUser)\.(\w+)")
FILTERS_DOC = "https://docs.aws.amazon.com/personalize/latest/dg/filter-expression-guidelines-requirements.html"


def _filter_problem(expression: str, data: DataConfig) -> str | None:
    """Why Personalize would reject the filter for this data, or None."""
    for dataset, field in _FILTER_FIELD.findall(expression):
        if dataset == "Interactions":
            if field.upper() != "EVENT_TYPE":
                return (
                    f"Interactions.{field}: filters on interactions can use only EVENT_TYPE "
                    f"({FILTERS_DOC})"
                )
            if not data.interactions.columns.event_type:
                return (
                    "uses Interactions.EVENT_TYPE, but the interactions have no event-type "
                    "column: map data.interactions.columns.event_type, or remove the filter"
                )
            continue
        kind = "items" if dataset in ("Items", "CurrentItem") else "users"
        source = getattr(data, kind)
        if source is None:
            return f"uses {dataset}.{field}, but there is no {kind} dataset: add data.{kind}"
        id_field = "ITEM_ID" if kind == "items" else "USER_ID"
        known = {id_field, *(c.upper() for c in source.categorical + source.numerical)}
        if field.upper() not in known:
            return (
                f"uses {dataset}.{field}, which is not a column of data.{kind}; its columns: "
                f"{sorted(known)} (add it to data.{kind}.categorical or numerical)"
            )
    return None


def _botocore_problems(service: str, shape_name: str, value: dict[str, Any]) -> str | None:
    """What botocore's parameter validation says about a pass-through value, or None."""
    import botocore.session
    from botocore.validate import ParamValidator

    shape = botocore.session.get_session().get_service_model(service).shape_for(shape_name)
    report = ParamValidator().validate(value, shape)
    return report.generate_report() if report.has_errors() else None


def json_schema() -> dict[str, Any]:
    """The config's JSON Schema (draft 2020-12), for checks where pydantic is not installed."""
    schema = PipelineConfig.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


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
        message = problem["msg"].removeprefix("Value error, ")
        if not problem["loc"]:  # a check across fields: its message names them
            lines.append(f"  - {message}")
            continue
        field = ".".join(str(part) for part in problem["loc"])
        got = problem.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  - {field}: {message}{shown}")
    return "\n".join(lines)


def main() -> None:
    """Write config.schema.json from the model (a test checks it is current)."""
    SCHEMA_FILE.write_text(json.dumps(json_schema(), indent=1) + "\n")
    print(f"wrote {SCHEMA_FILE}")


if __name__ == "__main__":
    main()
