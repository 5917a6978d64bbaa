"""SageMaker's Describe*Job and List*Jobs answers, built from one record per job.

Gap closed (moto 5.2.5): Describe*Job answers members outside the output shape or against it
(SecondaryStatus `Completed` at creation, `LabelingJobArn: ""`, a made-up MetricDefinition and
final metric, no Environment or ProcessingResources for processing jobs); DescribeModel returns
`VpcConfig: {}` without its required members; List*Jobs paginates before it filters and never
sorts (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListProcessingJobs.html).

A response is the request (what the caller sent), moto's own fields (ARN, ModelArtifacts) and
the job's lifecycle at one virtual instant, reduced to botocore's output shape: no member the
shape lacks, no empty value, no structure without its required members. List*Jobs describes
every job at the same instant, filters, sorts (the defaults the API reference states), then
paginates, so Describe and List agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape
from moto.sagemaker.exceptions import ValidationError

from localaws import clock
from localaws.sagemaker_lifecycle import JobRun, View, timestamp

MODEL = botocore.session.get_session().get_service_model("sagemaker")


@dataclass(frozen=True)
class Kind:
    kind: str  # processing | training | transform
    noun: str  # ProcessingJob: the operations' and members' names derive from it
    collection: str  # moto backend attribute holding the jobs
    prefix: str  # ProcessingStartTime / ProcessingEndTime

    @property
    def name_key(self) -> str:
        return f"{self.noun}Name"

    @property
    def status_key(self) -> str:
        return f"{self.noun}Status"


KINDS = {
    kind.kind: kind
    for kind in (
        Kind("processing", "ProcessingJob", "processing_jobs", "Processing"),
        Kind("training", "TrainingJob", "training_jobs", "Training"),
        Kind("transform", "TransformJob", "transform_jobs", "Transform"),
    )
}


def conform(value: Any, shape: Shape, top: bool = False) -> Any:
    """Only what the shape declares, no empty values; a structure missing a required member
    is left out (the top-level response is kept whole, so a test can see what it lacks)."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return None
        kept = {k: conform(v, shape.members[k]) for k, v in value.items() if k in shape.members}
        kept = {k: v for k, v in kept.items() if v is not None}
        complete = kept and all(name in kept for name in shape.required_members)
        return kept if top or complete else None
    if isinstance(shape, ListShape):
        items = [conform(item, shape.member) for item in value]
        return [item for item in items if item is not None] or None
    if isinstance(shape, MapShape):
        return {k: v for k, v in value.items() if v is not None} or None
    return value


def _output(operation: str) -> StructureShape:
    return MODEL.operation_model(operation).output_shape


def _training_fields(run: JobRun, view: View, now: float) -> dict:
    seconds = None
    if view.ended is not None and view.started is not None:
        seconds = max(int(view.ended - view.started), 1)
    completed = view.status == "Completed"
    return {
        "SecondaryStatus": view.secondary,
        "SecondaryStatusTransitions": run.transitions(now),
        "TrainingTimeInSeconds": seconds,
        "BillableTimeInSeconds": seconds,
        "FinalMetricDataList": [
            {"MetricName": name, "Value": value, "Timestamp": timestamp(view.ended)}
            for name, value in run.metrics.items()
        ]
        if completed
        else None,
    }


def describe(kind: Kind, job, run: JobRun, now: float | None = None) -> dict:
    """Describe*Job: the request, moto's fields and the lifecycle, in the output shape."""
    now = clock.time() if now is None else now
    view = run.view(now)
    shape = _output(f"Describe{kind.noun}")
    response = dict(job.response_object)
    response.update({k: v for k, v in run.request.items() if k in shape.members})
    response.update(
        {
            kind.status_key: view.status,
            "CreationTime": timestamp(view.created),
            "LastModifiedTime": timestamp(view.last_modified),
            f"{kind.prefix}StartTime": timestamp(view.started),
            f"{kind.prefix}EndTime": timestamp(view.ended),
            "FailureReason": view.failure_reason,
        }
    )
    if kind.kind == "training":
        response.update(_training_fields(run, view, now))
        job.secondary_status = view.secondary
    setattr(job, f"{kind.kind}_job_status", view.status)  # moto's own readers see it too
    return conform(response, shape, top=True)


def _documented_default(operation: str, member: str, fallback: str) -> str:
    """The default the API reference states for a request member ("The default is X.")."""
    text = MODEL.operation_model(operation).input_shape.members[member].documentation or ""
    found = re.search(r"default (?:value )?is (\w+)", re.sub(r"<[^>]+>", "", text))
    return found.group(1) if found else fallback


def _epoch(value: Any) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def _selected(job: dict, request: dict, kind: Kind) -> bool:
    """The List*Jobs filters, as the API reference defines them (after / before are strict)."""
    checks = [
        ("CreationTimeAfter", lambda v: _epoch(job["CreationTime"]) > _epoch(v)),
        ("CreationTimeBefore", lambda v: _epoch(job["CreationTime"]) < _epoch(v)),
        ("LastModifiedTimeAfter", lambda v: _epoch(job["LastModifiedTime"]) > _epoch(v)),
        ("LastModifiedTimeBefore", lambda v: _epoch(job["LastModifiedTime"]) < _epoch(v)),
        ("NameContains", lambda v: v in job[kind.name_key]),
        ("StatusEquals", lambda v: job[kind.status_key] == v),
    ]
    return all(check(request[key]) for key, check in checks if request.get(key) is not None)


def list_jobs(kind: Kind, backend, request: dict, runs: dict[str, JobRun]) -> dict:
    """List*Jobs over the same records Describe*Job reads: filtered, sorted, then paginated."""
    operation = f"List{kind.noun}s"
    now = clock.time()
    jobs = [
        describe(kind, job, runs[job.arn], now)
        for job in list(getattr(backend, kind.collection).values())
        if job.arn in runs
    ]
    jobs = [job for job in jobs if _selected(job, request, kind)]
    sort_by = request.get("SortBy") or _documented_default(operation, "SortBy", "CreationTime")
    order = request.get("SortOrder") or _documented_default(operation, "SortOrder", "Descending")
    field = {"Name": kind.name_key, "Status": kind.status_key}.get(sort_by, "CreationTime")
    jobs.sort(key=lambda job: (job[field], job[kind.name_key]), reverse=order == "Descending")
    size = int(request.get("MaxResults") or _documented_default(operation, "MaxResults", "10"))
    token = request.get("NextToken") or "0"
    if not token.isdigit() or int(token) > len(jobs):
        raise ValidationError(message=f"Invalid pagination token: {token!r}")
    first = int(token)
    summary = _output(operation).members[f"{kind.noun}Summaries"].member
    return {
        f"{kind.noun}Summaries": [conform(job, summary) for job in jobs[first : first + size]],
        "NextToken": str(first + size) if first + size < len(jobs) else None,
    }
