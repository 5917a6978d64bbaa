"""SageMaker in the local account: jobs that run, on the virtual clock, answered as the API does.

Gaps closed (moto 5.2.5), with the modules next to this one:
- Create{Processing,Training,Transform}Job store part of the request (CreateProcessingJob drops
  Environment and ProcessingResources) and report the job `Completed` at once; nothing runs
  (sagemaker_processing, sagemaker_algorithms), nothing takes time (sagemaker_lifecycle).
- Describe*Job/DescribeModel answer outside botocore's output shape; List*Jobs paginates before
  it filters and never sorts (sagemaker_responses).
- StopTrainingJob and StopTransformJob do not exist (NotImplementedError: HTTP 500 on a server);
  StopProcessingJob marks any job Stopped, even a completed one
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StopTrainingJob.html).
- CreateTransformJob accepts a model that does not exist (the service refuses it:
  ValidationException 'Could not find model "<arn>".').
- AddTags/ListTags/DeleteTags on an ARN that does not exist raise AttributeError (HTTP 500);
  AddTags appends a second value for a key instead of replacing it
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AddTags.html).

Every job is a `sagemaker_lifecycle.JobRun` keyed by its ARN (`RUNS`), created here when moto has
stored the job, its computation started in a thread that holds the clock. Faults for the next
jobs: `FAULTS` (also `python -m localaws faults sagemaker ...`).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.logs.models import logs_backends
from moto.sagemaker import models as sm_models
from moto.sagemaker.exceptions import MissingModel, ValidationError
from moto.sagemaker.responses import SageMakerResponse

from localaws import clock
from localaws.patching import patched
from localaws.sagemaker_algorithms import knn_query, run_training_job, run_transform_job
from localaws.sagemaker_lifecycle import Faults, JobError, JobRun, failure_reason, timestamp
from localaws.sagemaker_processing import run_processing_job, set_local_endpoint
from localaws.sagemaker_responses import KINDS, MODEL, Kind, conform, describe, list_jobs

__all__ = ["FAULTS", "RUNS", "install", "knn_query", "set_local_endpoint"]

RUNS: dict[str, JobRun] = {}  # by job ARN
FAULTS = Faults()  # python -m localaws faults sagemaker … (admin.py)


def _request(response: SageMakerResponse) -> dict:
    body = response.body
    if isinstance(body, bytes):
        body = body.decode()
    return json.loads(body or "{}")


# --- creating a job -------------------------------------------------------------------------------


def _logger(kind: Kind, name: str, account: str, region: str) -> Callable[[str], None]:
    """Lines to CloudWatch Logs, /aws/sagemaker/<Kind>Jobs, stream `<job>/algo-1`."""
    group, stream = f"/aws/sagemaker/{kind.noun}s", f"{name}/algo-1"
    logs = logs_backends[account][region]
    logs.ensure_log_group(group)
    with contextlib.suppress(Exception):
        logs.create_log_stream(group, stream)

    def log(line: str) -> None:
        if line.strip():
            stamp = int(clock.time() * 1000)
            logs.put_log_events(group, stream, [{"timestamp": stamp, "message": line}])

    return log


def _work(kind: Kind, run: JobRun, backend, job, log) -> Callable[[], None]:
    account, request = backend.account_id, run.request
    if kind.kind == "processing":
        return lambda: run_processing_job(run, request, job.arn, account, log)
    if kind.kind == "training":
        artifact = job.model_artifacts["S3ModelArtifacts"]
        return lambda: run_training_job(run, request, artifact, account, log)
    return lambda: run_transform_job(
        run, request, backend._models.get(request["ModelName"]), account, log
    )


def _start(run: JobRun, work: Callable[[], None]) -> None:
    """The computation in a thread that holds the clock while it works."""

    def body() -> None:
        try:
            work()
        except Exception as err:  # any internal failure is the job's FailureReason
            if run.outcome is None:
                run.finish("Failed", failure_reason(err))

    run.thread = clock.HoldingThread(target=body, name=f"sagemaker-{run.name}", daemon=True)
    run.thread.start()


def begin(kind: Kind, backend, job, request: dict) -> JobRun:
    """A job moto has just stored: its lifecycle starts now, its computation in a thread."""
    fail, slower = FAULTS._take(kind.kind)
    limit = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    run = JobRun(kind.kind, request[kind.name_key], limit, slower)
    run.request = request
    job.creation_time = job.last_modified_time = timestamp(run.created)
    RUNS[job.arn] = run
    if fail is not None:
        run.finish("Failed", fail, after=run.working)
        return run
    log = _logger(kind, run.name, backend.account_id, backend.region_name)
    _start(run, _work(kind, run, backend, job, log))
    return run


def _creator(kind: Kind) -> Callable:
    original = getattr(SageMakerResponse, f"create_{kind.kind}_job")

    def create(self: SageMakerResponse) -> ActionResult:
        request = _request(self)
        backend = self.sagemaker_backend
        if kind.kind == "transform" and request["ModelName"] not in backend._models:
            raise MissingModel(
                sm_models.arn_formatter(
                    "model", request["ModelName"], backend.account_id, backend.region_name
                )
            )
        result = original(self)
        begin(kind, backend, getattr(backend, kind.collection)[request[kind.name_key]], request)
        return result

    return create


# --- describing and listing -----------------------------------------------------------------------


def _describer(kind: Kind) -> Callable:
    original = getattr(SageMakerResponse, f"describe_{kind.kind}_job")

    def describe_job(self: SageMakerResponse) -> ActionResult:
        name = _request(self).get(kind.name_key)
        job = getattr(self.sagemaker_backend, kind.collection).get(name)
        if job is None or job.arn not in RUNS:
            return original(self)  # moto's ValidationException for a job that does not exist
        return ActionResult(describe(kind, job, RUNS[job.arn]))

    return describe_job


def _lister(kind: Kind) -> Callable:
    def list_handler(self: SageMakerResponse) -> ActionResult:
        return ActionResult(list_jobs(kind, self.sagemaker_backend, _request(self), RUNS))

    return list_handler


# --- stopping -------------------------------------------------------------------------------------


def _stopper(kind: Kind) -> Callable:
    def stop(self: SageMakerResponse) -> ActionResult:
        backend = self.sagemaker_backend
        name = _request(self).get(kind.name_key)
        job = getattr(backend, kind.collection).get(name)
        if job is None or job.arn not in RUNS:
            arn = sm_models.arn_formatter(
                f"{kind.kind}-job", str(name), backend.account_id, backend.region_name
            )
            raise ValidationError(message=f"Could not find {kind.kind} job '{arn}'.")
        try:
            RUNS[job.arn].request_stop(clock.time())
        except JobError as err:
            raise ValidationError(message=str(err)) from err
        return EmptyResult()

    return stop


# --- models and tags ------------------------------------------------------------------------------


def _describe_model(self: SageMakerResponse) -> ActionResult:
    model = self.sagemaker_backend.describe_model(_request(self).get("ModelName"))
    shape = MODEL.operation_model("DescribeModel").output_shape
    return ActionResult(conform(model.response_object, shape, top=True))


def _resource_from_arn(self, arn: str) -> Any:
    try:
        resource = _original_resource_from_arn(self, arn)
    except (AttributeError, ValueError, TypeError):
        resource = None
    if resource is None:
        raise ValidationError(message=f"Could not find resource {arn}")
    return resource


def _add_tags(self, arn: str, tags: list[dict[str, str]]) -> list[dict[str, str]]:
    """A key that is already there gets the new value (AddTags overwrites)."""
    resource = self._get_resource_from_arn(arn)
    merged = {tag["Key"]: tag for tag in resource.tags}
    merged.update({tag["Key"]: tag for tag in tags})
    resource.tags = list(merged.values())
    return resource.tags


_original_resource_from_arn = sm_models.SageMakerModelBackend._get_resource_from_arn

_PATCHES: list[tuple[Any, str, Any]] = [
    (sm_models.SageMakerModelBackend, "_get_resource_from_arn", _resource_from_arn),
    (sm_models.SageMakerModelBackend, "add_tags", _add_tags),
    (SageMakerResponse, "describe_model", _describe_model),
]
for _kind in KINDS.values():
    _PATCHES += [
        (SageMakerResponse, f"create_{_kind.kind}_job", _creator(_kind)),
        (SageMakerResponse, f"describe_{_kind.kind}_job", _describer(_kind)),
        (SageMakerResponse, f"list_{_kind.kind}_jobs", _lister(_kind)),
        (SageMakerResponse, f"stop_{_kind.kind}_job", _stopper(_kind)),
    ]


def _watch(done: threading.Event, every: float = 0.2) -> None:
    """Look at every job a few times a real second, so a job whose end has passed publishes
    its outputs (and one past MaxRuntimeInSeconds is stopped) even if nobody describes it.
    It only reads the clock: it neither holds it nor sleeps on it."""
    while not done.wait(every):
        for run in list(RUNS.values()):
            if not run.settled:
                with contextlib.suppress(Exception):  # Describe* raises it to its caller
                    run.view()


@contextlib.contextmanager
def install() -> Iterator[None]:
    """The patches above and the watcher; on exit every running job is stopped, its files
    removed."""
    RUNS.clear()
    FAULTS.clear()
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(done,), name="sagemaker-jobs", daemon=True)
    with patched(_PATCHES):
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
            for run in list(RUNS.values()):
                run.close()
            RUNS.clear()
