"""What a run used: measured from what AWS reports for it, or estimated from a config.

Both give a `recops.prices.Usage` (and the `Standing` resources billed by the hour), which
`recops.prices` prices with the one table. Measuring reads only what the run owns: Personalize
and SageMaker resources named `<stack>--…-<run id>[-<attempt>]` (`recops.names`), plus the
stack's campaigns and recommenders, which bill by the hour whichever run made them.

Measuring needs boto3 clients and the standard library only (the config model is imported by
`estimate` alone), so a Lambda step can bundle this module with `names.py` and `prices.py`.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recops import names
from recops.prices import (
    SECONDS_PER_HOUR,
    SageMakerJob,
    Standing,
    Usage,
    describe_run_cost,
    is_v2,
)

if TYPE_CHECKING:
    from recops.config import PipelineConfig

GB = 1e9


@dataclass(frozen=True)
class Measured:
    usage: Usage
    standing: Standing
    notes: list[str] = field(default_factory=list)  # what could not be measured, and why


def pages(client: Any, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item of a List* call, through botocore's paginator model."""
    for page in client.get_paginator(operation).paginate(**params):
        yield from page.get(key, [])


def run_owned(name: str, stack: str, run: str) -> bool:
    """True for a name the stack gave to something of this run (any attempt)."""
    return names.owned_by(name, stack) and re.search(rf"-{run}(?:-\d+)?$", name) is not None


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


# --- measured -----------------------------------------------------------------------------------


@dataclass
class RunScope:
    """The run whose usage is measured, and the clients to measure it with."""

    personalize: Any
    sagemaker: Any
    s3: Any
    stack: str
    run: str
    started: datetime.datetime
    now: datetime.datetime  # the execution's end, or now while it runs
    data_bucket: str
    notes: list[str] = field(default_factory=list)

    def hours_since(self, moment: datetime.datetime) -> float:
        return max(0.0, (self.now - moment).total_seconds() / SECONDS_PER_HOUR)


def measure(scope: RunScope) -> Measured:
    """The run's usage from its Personalize and SageMaker resources (see the module docstring)."""
    recipes = _version_recipes(scope)
    training_hours = v2_interactions = 0.0
    for version in recipes.values():
        if is_v2(version["recipeArn"]):
            v2_interactions += _trained_interactions(scope)
        elif version.get("trainingHours") is None:
            scope.notes.append(f"{version['name']}: {version['status']}, no training hours yet")
        else:
            training_hours += version["trainingHours"]
    batch, v2_batch = _batch_recommendations(scope, recipes)
    campaigns = _campaigns(scope)
    recommender_rps, recommender_requests = _recommenders(scope)
    usage = Usage(
        ingested_gb=_imported_bytes(scope) / GB,
        training_hours=training_hours,
        v2_training_interactions=int(v2_interactions),
        batch_recommendations=batch,
        v2_recommendations=v2_batch + campaigns["v2_requests"],
        campaign_tps_hours=campaigns["tps_hours"],
        recommender_requests=recommender_requests,
        sagemaker_jobs=tuple(_sagemaker_jobs(scope)),
    )
    standing = Standing(campaigns["tps"], campaigns["v2_tps"], recommender_rps)
    return Measured(usage, standing, scope.notes)


def describe(scope: RunScope) -> str:
    """One line for a run's notification: its cost so far, and what could not be counted."""
    measured = measure(scope)
    line = describe_run_cost(measured.usage, measured.standing)
    return line + (f"; not counted: {'; '.join(measured.notes)}" if measured.notes else "")


def _version_recipes(scope: RunScope) -> dict[str, dict[str, Any]]:
    """DescribeSolutionVersion of each of the run's solution versions, by ARN."""
    client, found = scope.personalize, {}
    for solution in pages(client, "list_solutions", "solutions"):
        if not names.owned_by(solution["name"], scope.stack):
            continue
        arn = solution["solutionArn"]
        for summary in pages(client, "list_solution_versions", "solutionVersions", solutionArn=arn):
            if summary["creationDateTime"] < scope.started:
                continue  # older than the run: not its
            version = client.describe_solution_version(
                solutionVersionArn=summary["solutionVersionArn"]
            )["solutionVersion"]
            if run_owned(version.get("name", ""), scope.stack, scope.run):
                found[version["solutionVersionArn"]] = version
    return found


def _trained_interactions(scope: RunScope) -> int:
    """What prep wrote for Personalize to train on (prep's manifest.json)."""
    key = f"prepared/{scope.run}/manifest.json"
    try:
        body = scope.s3.get_object(Bucket=scope.data_bucket, Key=key)["Body"].read()
    except scope.s3.exceptions.NoSuchKey:
        scope.notes.append(f"s3://{scope.data_bucket}/{key} missing: -v2 training not counted")
        return 0
    return int(json.loads(body)["personalize"]["interactions"])


def _batch_recommendations(scope: RunScope, recipes: dict[str, dict]) -> tuple[int, int]:
    """Recommendations the run's batch jobs made (one per input line), other and -v2 recipes."""
    client, counts = scope.personalize, [0, 0]
    for summary in pages(client, "list_batch_inference_jobs", "batchInferenceJobs"):
        if not run_owned(summary["jobName"], scope.stack, scope.run):
            continue
        job = client.describe_batch_inference_job(
            batchInferenceJobArn=summary["batchInferenceJobArn"]
        )["batchInferenceJob"]
        version = (
            recipes.get(job["solutionVersionArn"])
            or client.describe_solution_version(solutionVersionArn=job["solutionVersionArn"])[
                "solutionVersion"
            ]
        )
        lines = _lines(scope, job["jobInput"]["s3DataSource"]["path"])
        counts[is_v2(version["recipeArn"])] += lines
    return counts[0], counts[1]


def _lines(scope: RunScope, uri: str) -> int:
    bucket, key = split_s3(uri)
    try:
        body = scope.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except scope.s3.exceptions.NoSuchKey:
        scope.notes.append(f"{uri} missing: its batch recommendations not counted")
        return 0
    return body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)


def _imported_bytes(scope: RunScope) -> int:
    client, total = scope.personalize, 0
    for summary in pages(client, "list_dataset_import_jobs", "datasetImportJobs"):
        if not run_owned(summary["jobName"], scope.stack, scope.run):
            continue
        job = client.describe_dataset_import_job(
            datasetImportJobArn=summary["datasetImportJobArn"]
        )["datasetImportJob"]
        bucket, prefix = split_s3(job["dataSource"]["dataLocation"])
        objects = pages(scope.s3, "list_objects_v2", "Contents", Bucket=bucket, Prefix=prefix)
        total += sum(o["Size"] for o in objects)
    return total


def _campaigns(scope: RunScope) -> dict[str, float]:
    """Provisioned TPS of the stack's campaigns; TPS-hours of those this run created."""
    client = scope.personalize
    found = {"tps": 0.0, "v2_tps": 0.0, "tps_hours": 0.0, "v2_requests": 0.0}
    for summary in pages(client, "list_campaigns", "campaigns"):
        if not names.owned_by(summary["name"], scope.stack) or summary["status"] != "ACTIVE":
            continue
        campaign = client.describe_campaign(campaignArn=summary["campaignArn"])["campaign"]
        version = client.describe_solution_version(
            solutionVersionArn=campaign["solutionVersionArn"]
        )["solutionVersion"]
        v2, tps = is_v2(version["recipeArn"]), float(campaign["minProvisionedTPS"])
        found["v2_tps" if v2 else "tps"] += tps
        if campaign["creationDateTime"] >= scope.started:
            tps_hours = tps * scope.hours_since(campaign["creationDateTime"])
            if v2:
                found["v2_requests"] += tps_hours * SECONDS_PER_HOUR
            else:
                found["tps_hours"] += tps_hours
    return found


def _recommenders(scope: RunScope) -> tuple[float, int]:
    client, rps, requests = scope.personalize, 0.0, 0.0
    for summary in pages(client, "list_recommenders", "recommenders"):
        if not names.owned_by(summary["name"], scope.stack) or summary["status"] != "ACTIVE":
            continue
        config = summary.get("recommenderConfig") or {}
        minimum = float(config.get("minRecommendationRequestsPerSecond", 1))
        rps += minimum
        if summary["creationDateTime"] >= scope.started:
            requests += minimum * SECONDS_PER_HOUR * scope.hours_since(summary["creationDateTime"])
    return rps, int(requests)


@dataclass(frozen=True)
class JobKind:
    """What differs between the kinds of SageMaker job: their API names and members."""

    listing: str
    summaries: str
    name: str
    describe: str
    resources: str  # dotted path to InstanceType/InstanceCount
    started: str
    ended: str
    # A member with the billed seconds per instance, when the API reports one: a training job's
    # BillableTimeInSeconds is what is billed at the on-demand rate (managed spot training
    # saves 1 - BillableTimeInSeconds / TrainingTimeInSeconds; times InstanceCount, the compute
    # billed: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html).
    billable: str | None = None


SAGEMAKER_KINDS = {
    "processing": JobKind(
        "list_processing_jobs",
        "ProcessingJobSummaries",
        "ProcessingJobName",
        "describe_processing_job",
        "ProcessingResources.ClusterConfig",
        "ProcessingStartTime",
        "ProcessingEndTime",
    ),
    "training": JobKind(
        "list_training_jobs",
        "TrainingJobSummaries",
        "TrainingJobName",
        "describe_training_job",
        "ResourceConfig",
        "TrainingStartTime",
        "TrainingEndTime",
        billable="BillableTimeInSeconds",
    ),
    "transform": JobKind(
        "list_transform_jobs",
        "TransformJobSummaries",
        "TransformJobName",
        "describe_transform_job",
        "TransformResources",
        "TransformStartTime",
        "TransformEndTime",
    ),
}


def _sagemaker_jobs(scope: RunScope) -> Iterator[SageMakerJob]:
    for kind, api in SAGEMAKER_KINDS.items():
        for summary in pages(scope.sagemaker, api.listing, api.summaries, NameContains=scope.run):
            name = summary[api.name]
            if not run_owned(name, scope.stack, scope.run):
                continue
            job = getattr(scope.sagemaker, api.describe)(**{api.name: name})
            instances = _dig(job, api.resources)
            seconds = job.get(api.billable) if api.billable else None
            if seconds is None:
                started, ended = job.get(api.started), job.get(api.ended)
                seconds = ((ended or scope.now) - started).total_seconds() if started else 0.0
            yield SageMakerJob(
                name, kind, instances["InstanceType"], instances["InstanceCount"], max(seconds, 0)
            )


def _dig(data: dict, path: str) -> dict:
    for part in path.split("."):
        data = data[part]
    return data


# --- estimated ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assumptions:
    """What an estimate from a config alone has to assume (`recops cost` prints them)."""

    interactions: int = 100_000
    users: int = 1_000
    bytes_per_interaction: int = 40
    training_hours_per_solution: float = 1.0
    job_minutes: float = 10.0

    def describe(self) -> list[str]:
        return [
            f"{self.interactions:,} interactions of {self.users:,} users, "
            f"{self.bytes_per_interaction} bytes each in the import file",
            f"{self.training_hours_per_solution:g} training hour(s) per solution on a recipe "
            "other than -v2 (HPO multiplies it); -v2 recipes train on every interaction",
            "every batch job recommends for every user (its input is the holdout users)",
            f"every SageMaker job runs {self.job_minutes:g} minutes on its instances",
            "campaigns and recommenders bill at their provisioned minimum while they exist",
        ]


# SageMaker jobs of a run (recops.contracts.SAGEMAKER_JOBS) that bill instances: their kind and
# which instance types they use. The KNN model is CreateModel, which bills nothing.
def _estimated_jobs(config: PipelineConfig, minutes: float) -> list[SageMakerJob]:
    from recops import contracts  # imports the config model, which Lambda steps do not bundle

    fm = config.factorization_machines
    processing = ("processing", fm.processing_instance_type, 1)
    jobs = {"prep": processing, "evaluate": processing}
    if fm.enabled:
        jobs |= {
            "fm": ("training", fm.training_instance_type, fm.training_instance_count),
            "fm-to-knn": processing,
            "knn": ("training", fm.knn.instance_type, 1),
            "knn-transform": (
                "transform",
                fm.knn.transform_instance_type,
                fm.knn.transform_instance_count,
            ),
        }
    return [
        SageMakerJob(label, kind, instance_type, count, minutes * 60)
        for label in contracts.SAGEMAKER_JOBS
        if label in jobs
        for kind, instance_type, count in [jobs[label]]
    ]


def estimate(config: PipelineConfig, assumptions: Assumptions | None = None) -> Measured:
    """A run's usage from the config and the assumptions, before anything runs."""
    a = assumptions or Assumptions()
    personalize = config.personalize
    recipes = {s.name: s.recipe for s in personalize.solutions} if personalize.enabled else {}
    v2 = [name for name, recipe in recipes.items() if is_v2(recipe)]
    batches = [b.solution for b in personalize.batch_inference] if personalize.enabled else []
    campaigns = personalize.campaigns if personalize.enabled else []
    recommenders = personalize.recommenders if personalize.enabled else []
    usage = Usage(
        ingested_gb=a.interactions * a.bytes_per_interaction / GB if recipes else 0.0,
        training_hours=a.training_hours_per_solution * (len(recipes) - len(v2)),
        v2_training_interactions=a.interactions * len(v2),
        batch_recommendations=a.users * sum(1 for s in batches if s not in v2),
        v2_recommendations=a.users * sum(1 for s in batches if s in v2),
        sagemaker_jobs=tuple(_estimated_jobs(config, a.job_minutes)),
    )
    standing = Standing(
        campaign_tps=sum(c.min_provisioned_tps for c in campaigns if c.solution not in v2),
        v2_campaign_tps=sum(c.min_provisioned_tps for c in campaigns if c.solution in v2),
        recommender_rps=sum(r.min_recommendation_requests_per_second for r in recommenders),
    )
    notes = a.describe()
    if config.factorization_machines.enabled and config.factorization_machines.spot:
        notes.append(
            "FM and KNN train on managed spot, priced here at the on-demand rate (an upper bound: "
            "`recops cost RUN` prices the BillableTimeInSeconds each job reports)"
        )
    return Measured(usage, standing, notes)
