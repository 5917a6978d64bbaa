"""The Lambda entry point: one function serves every Personalize step, chosen by the event's
"step" (the rest of the event is the step's input, see core.py). Thin on purpose: structured logs
and X-Ray tracing (Powertools; tracing is off outside Lambda and with POWERTOOLS_TRACE_DISABLED),
one client per execution environment, and errors named by their AWS code, so the state machine's
Retry/Catch match `ResourceInUseException`, `ThrottlingException`, ... (see README.md here).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from botocore.exceptions import ClientError

from . import (
    batch_inference,
    campaigns,
    dataset_groups,
    datasets,
    event_trackers,
    filters,
    import_jobs,
    recommenders,
    schemas,
    solution_versions,
    solutions,
)
from .core import SERVICE, InvalidStepInputError, personalize_client, step_input

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
STEPS = {
    "schema": schemas.ensure,
    "datasetGroup": dataset_groups.ensure,
    "dataset": datasets.ensure,
    "datasetImportJob": import_jobs.ensure,
    "filter": filters.ensure,
    "eventTracker": event_trackers.ensure,
    "solution": solutions.ensure,
    "solutionVersion": solution_versions.ensure,
    "solutionMetrics": solution_versions.metrics,
    "batchInferenceJob": batch_inference.ensure,
    "campaign": campaigns.ensure,
    "recommender": recommenders.ensure,
}
FAMILIES = {  # the step's resource family, for tests and readers; metrics has none
    "schema": schemas.FAMILY,
    "datasetGroup": dataset_groups.FAMILY,
    "dataset": datasets.FAMILY,
    "datasetImportJob": import_jobs.FAMILY,
    "filter": filters.FAMILY,
    "eventTracker": event_trackers.FAMILY,
    "solution": solutions.FAMILY,
    "solutionVersion": solution_versions.FAMILY,
    "batchInferenceJob": batch_inference.FAMILY,
    "campaign": campaigns.FAMILY,
    "recommender": recommenders.FAMILY,
}
_clients: list[Any] = []  # created on first use, reused while the environment is warm


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event: dict, context: Any) -> dict:
    tracer.put_annotation("step", str(event.get("step")))
    if not _clients:
        _clients.append(personalize_client())
    try:
        result = run_step(_clients[0], event, arn_prefix(context.invoked_function_arn))
    except ClientError as err:
        raise named_after_code(err) from err
    logger.info("step done", extra={"step": event["step"], "outcome": result})
    return result


def run_step(client: Any, event: dict, arn_prefix: str | None = None) -> dict:
    """The handler's work without Lambda: the event's step, on its input (a plan entry with its
    references resolved, or {"name", "params", "tags", parent ARNs})."""
    step = STEPS.get(event.get("step", ""))
    if step is None:
        raise InvalidStepInputError(f"unknown step {event.get('step')!r}; one of {sorted(STEPS)}")
    return step(client, step_input(event), arn_prefix)


def arn_prefix(function_arn: str) -> str:
    """arn:<partition>:personalize:<region>:<account>, from this function's own ARN."""
    partition, _, region, account = function_arn.split(":")[1:5]
    return f"arn:{partition}:personalize:{region}:{account}"


def named_after_code(err: ClientError) -> Exception:
    """The error under its AWS code: botocore names only the codes the model declares, so
    ThrottlingException (after the retries) would otherwise reach Step Functions as ClientError."""
    code = err.response.get("Error", {}).get("Code", "")
    if type(err).__name__ == code or not code.isidentifier():
        return err
    return type(code, (ClientError,), {})(err.response, err.operation_name)
