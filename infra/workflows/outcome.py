"""How a run ends and who hears about it: the failure path every Task's Catch leads to, and the
notification (SNS, plus an EventBridge event for automation) on success, partial success or
failure. Detail type "recops run finished", source "recops"; detail {stack, run, status, ...}.
"""

from __future__ import annotations

from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.workflows.core import fail_with_failure, jsonata

SOURCE = "recops"
DETAIL_TYPE = "recops run finished"


def notify(
    scope: Construct, label: str, *, topic: sns.ITopic, subject: str, message: str, detail: str
) -> tuple[sfn.TaskStateBase, sfn.TaskStateBase]:
    """SNS then EventBridge; subject, message and detail are JSONata expressions."""
    publish = tasks.SnsPublish.jsonata(
        scope,
        f"{label}: notify",
        topic=topic,
        subject=jsonata(f"$substring({subject}, 0, 100)"),
        message=sfn.TaskInput.from_text(jsonata(message)),
        outputs=jsonata("$states.input"),
    )
    event = tasks.EventBridgePutEvents.jsonata(
        scope,
        f"{label}: event",
        entries=[
            tasks.EventBridgePutEventsEntry(
                detail=sfn.TaskInput.from_text(jsonata(detail)),
                detail_type=DETAIL_TYPE,
                source=SOURCE,
            )
        ],
        outputs=jsonata("$states.input"),
    )
    return publish, event


def failure_path(
    scope: Construct,
    *,
    artifacts: s3.IBucket,
    runs_prefix: str,
    topic: sns.ITopic,
    stack: str,
    record: str = "failure.json",
) -> sfn.IChainable:
    """Record `$failure` under the run, notify, and fail the execution with its error.

    Each of its Tasks retries briefly and, if it still fails, goes straight to the final Fail:
    the path that reports failures must not loop into itself.
    """
    run = "($exists($run.runId) ? $run.runId : $states.context.Execution.Name)"
    end = fail_with_failure(scope, "Run failed")
    record = tasks.CallAwsService.jsonata(
        scope,
        "Record the failure",
        service="s3",
        action="putObject",
        parameters={
            "Bucket": artifacts.bucket_name,
            "Key": jsonata(f"'{runs_prefix}' & {run} & '/{record}'"),
            "Body": jsonata("$string($failure)"),
            "ContentType": "application/json",
        },
        iam_resources=[artifacts.arn_for_objects(f"{runs_prefix}*")],
        outputs=jsonata("$states.input"),
    )
    subject = f"'recops {stack} run ' & {run} & ': FAILED'"
    message = (
        f"'recops {stack}: run ' & {run} & ' FAILED in state \"' & $failure.state & '\".\\n"
        "Error: ' & $failure.error & '\\nCause: ' & $string($failure.cause) & '\\nExecution: ' "
        "& $states.context.Execution.Id"
    )
    detail = (
        f"{{'stack': '{stack}', 'run': {run}, 'status': 'FAILED', 'state': $failure.state, "
        "'error': $failure.error, 'cause': $string($failure.cause), "
        "'execution': $states.context.Execution.Id}"
    )
    publish, event = notify(
        scope, "Failure", topic=topic, subject=subject, message=message, detail=detail
    )
    for task in (record, publish, event):
        task.add_retry(errors=["States.ALL"], max_attempts=2)
        task.add_catch(end, errors=["States.ALL"])
    # A child run (FM → KNN started by a Personalize run) is reported by its parent, as one
    # failed row of the leaderboard: announcing FAILED here would contradict the parent's PARTIAL.
    child = sfn.Choice.jsonata(scope, "Failure: a child run?")
    child.when(
        sfn.Condition.jsonata(jsonata("$exists($states.context.Execution.Input.parentRun)")), end
    ).otherwise(publish)
    record.next(child)
    publish.next(event).next(end)
    return record
