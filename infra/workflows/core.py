"""What every state machine of the product is built from, written once.

- **Guard**: a `Retry` for throttling and quota errors and a `Catch` on every Task, into one
  handler that receives `$failure` = {state, error, cause}. The run-level handler records the
  failure and notifies (`failure_path`); a Map iteration's handler turns it into the iteration's
  output, so one recipe that fails does not end the others.
- **bounded_poll**: Wait + aws-sdk Describe + Choice, with backoff and a bound; no Lambda per poll.
  When it runs out, the failure names the resource and its last status.
- Every state is JSONata: values known only at run time are variables (`$run`, `$refs`...), and
  a JSON document in S3 becomes a value with `aws-sdk:s3:getObject` and `$parse` (`read_json`).

Each builder adds the IAM its state needs to the state machine role it is given, so whoever calls a
service owns the grant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

# Errors worth retrying, in every spelling a Task can raise them: a Lambda step's own errorType
# (lambdas/personalize names errors after their AWS code), aws-sdk integrations
# (`<Service>.<Code>Exception`) and the Lambda service itself. Source:
# https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html and
# https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
THROTTLED = [
    "ThrottlingException",
    "TooManyRequestsException",
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Personalize.ThrottlingException",
    "SageMaker.ThrottlingException",
    "S3.SlowDownException",
    "CloudWatch.ThrottlingException",
]
# botocore's models declare no throttling error for Personalize, SageMaker, S3 or CloudWatch, so
# an aws-sdk Task sees a throttled call as the service's generic exception (the same page):
# retried briefly, since a request the service refuses for good fails the same way again.
SDK_GENERIC = [
    "Personalize.PersonalizeException",
    "SageMaker.SageMakerException",
    "SageMaker.AmazonSageMakerException",
    "S3.S3Exception",
    "CloudWatch.CloudWatchException",
]
# Quotas (concurrent trainings, dataset groups, SageMaker instances per job type) free up when
# other work ends: retry for longer. SageMaker's is the modelled ResourceLimitExceeded (the
# optimized integration's `SageMaker.<Code>Exception`; localaws/stepfunctions_errors.py).
QUOTA = [
    "LimitExceededException",
    "Personalize.LimitExceededException",
    "SageMaker.ResourceLimitExceededException",
]
# A parent not ACTIVE yet, an update racing a status change: the step is idempotent, so retry.
NOT_READY = ["ResourceInUseException", "Personalize.ResourceInUseException"]


def jsonata(expression: str) -> str:
    return "{% " + expression + " %}"


def literal(value: Any) -> str:
    """A JSON value as a JSONata expression (JSON is valid JSONata)."""
    return json.dumps(value, separators=(",", ":"))


class Expr(str):
    """A JSONata expression inside a value given to `render`."""


def render(value: Any) -> str:
    """A JSON-like value whose leaves may be `Expr`s, as one JSONata expression: objects and
    arrays are built from Python, so no brace or quote is ever counted by hand."""
    if isinstance(value, Expr):
        return f"({value})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render(v) for v in value) + "]"
    return literal(value)


@dataclass(frozen=True)
class PollPolicy:
    """First wait, growth per poll, longest wait and how many polls before giving up."""

    first_seconds: int = 30
    backoff: float = 1.5
    max_seconds: int = 900
    max_polls: int = 200

    def polls_for(self, seconds: float) -> int:
        """How many Describe calls a wait of this long takes."""
        polls, waited, wait = 1, 0.0, float(self.first_seconds)
        while waited < seconds:
            waited, polls = waited + wait, polls + 1
            wait = min(wait * self.backoff, self.max_seconds)
        return polls

    def budget_hours(self) -> float:
        waits, wait = 0.0, float(self.first_seconds)
        for _ in range(self.max_polls):
            waits += wait
            wait = min(wait * self.backoff, self.max_seconds)
        return waits / 3600


# Minutes-long resources (dataset group, dataset, filter, campaign) and hours-long jobs (imports,
# solution versions, batch inference: up to 10 hours at the cap ≈ 40 polls at 15 minutes).
QUICK = PollPolicy(first_seconds=10, backoff=1.5, max_seconds=120, max_polls=60)
LONG = PollPolicy(first_seconds=60, backoff=1.5, max_seconds=1800, max_polls=60)
# A run-owned name's suffix: the run id, and `-<n>` after the n-th redrive. Evaluated where each
# name is made, since a redrive re-runs only the states that had not succeeded.
RUN_SUFFIX = (
    "($run.runId & ($states.context.Execution.RedriveCount > 0 ? "
    "'-' & $string($states.context.Execution.RedriveCount) : ''))"
)


@dataclass
class Guard:
    """Retry and Catch for Tasks, into one handler that reads `$failure`."""

    handler: sfn.IChainable
    retry_on_not_ready: bool = False
    # Variables of an inner scope (a Map iteration) may not be written there if an outer scope
    # has them, so each scope names its own: `item_failure`, `item_arn`, `item_polls`...
    prefix: str = ""

    def var(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def protect(self, task: sfn.TaskStateBase | sfn.CustomState, name: str) -> Any:
        task.add_retry(
            errors=THROTTLED,
            interval=Duration.seconds(5),
            backoff_rate=2,
            max_attempts=6,
            jitter_strategy=sfn.JitterType.FULL,
        )
        task.add_retry(
            errors=SDK_GENERIC, interval=Duration.seconds(5), backoff_rate=2, max_attempts=3
        )
        task.add_retry(
            errors=QUOTA,
            interval=Duration.minutes(2),
            backoff_rate=1.5,
            max_attempts=12,
            max_delay=Duration.minutes(30),
        )
        if self.retry_on_not_ready:
            task.add_retry(
                errors=NOT_READY,
                interval=Duration.seconds(30),
                backoff_rate=1.5,
                max_attempts=20,
                max_delay=Duration.minutes(10),
            )
        task.add_catch(
            self.handler, errors=["States.ALL"], assign={self.var("failure"): failure_of(name)}
        )
        return task

    def fail(self, scope: Construct, name: str, error: str, cause: str) -> sfn.Pass:
        """A Pass that sets `$failure` (cause: a JSONata expression) and goes to the handler."""
        record = f"{{'state': '{name}', 'error': '{error}', 'cause': {cause}}}"
        step = sfn.Pass.jsonata(scope, name, assign={self.var("failure"): jsonata(record)})
        step.next(self.handler)
        return step


def fail_with_failure(scope: Construct, name: str, variable: str = "failure") -> sfn.Fail:
    """End (a branch, or the run) with `$failure`'s error and cause. Fail may not raise a
    `States.*` name (reserved to the service), so those are reported as `Run.*`."""
    return sfn.Fail.jsonata(
        scope,
        name,
        error=jsonata(
            f"$substring(${variable}.error, 0, 7) = 'States.' ? 'Run.' & "
            f"$substringAfter(${variable}.error, 'States.') : ${variable}.error"
        ),
        cause=jsonata(f"${variable}.state & ': ' & $string(${variable}.cause)"),
    )


# A Lambda step's Cause is its error as JSON (errorMessage, errorType, stackTrace): keep the
# message, which says what is wrong and how to fix it. A SageMaker `.sync` job that fails gives
# its Describe*Job response as the Cause: keep the job's name and FailureReason. Any other Cause
# is kept as it is.
READABLE_CAUSE = (
    "($cause := $states.errorOutput.Cause; "
    "$exists($cause) and $substring($cause, 0, 16) = '{\"errorMessage\":' "
    "? $parse($cause).errorMessage : "
    "$exists($cause) and $substring($cause, 0, 1) = '{' and $contains($cause, '\"FailureReason\"') "
    "? ($job := $parse($cause); 'SageMaker job ' & $join([$job.ProcessingJobName, "
    "$job.TrainingJobName, $job.TransformJobName], '') & ' failed: ' & $job.FailureReason) "
    ": $cause)"
)


def failure_of(state: str) -> str:
    return jsonata(
        f"{{'state': '{state}', 'error': $states.errorOutput.Error, 'cause': {READABLE_CAUSE}}}"
    )


def bounded_poll(
    scope: Construct,
    name: str,
    *,
    guard: Guard,
    service: str,
    action: str,
    parameters: dict[str, Any],
    iam_resources: list[str],
    iam_action: str | None = None,
    status: str,
    reason: str,
    resource: str,
    policy: PollPolicy,
    done: tuple[str, ...] = ("ACTIVE",),
    waiting: tuple[str, ...] = ("CREATE PENDING", "CREATE IN_PROGRESS"),
) -> sfn.Chain:
    """Describe until `status` (a JSONata expression over `$states.result`) is in `done`.

    Waiting statuses wait (with backoff) up to `policy.max_polls` times; any other status, or
    running out, goes to the guard's handler with a failure naming `resource` (an expression)
    and the last status and reason. The chain's end is the Choice's "done" branch.
    """
    polls, wait_s, status_v, reason_v = (
        guard.var(n) for n in ("polls", "pollWait", "lastStatus", "lastReason")
    )
    start = sfn.Pass.jsonata(
        scope,
        f"{name} start",
        assign={polls: 0, wait_s: policy.first_seconds},
    )
    describe = tasks.CallAwsService.jsonata(
        scope,
        f"{name} describe",
        service=service,
        action=action,
        parameters=parameters,
        iam_resources=iam_resources,
        iam_action=iam_action,
        assign={
            status_v: jsonata(status),
            reason_v: jsonata(f"$exists({reason}) ? $string({reason}) : ''"),
        },
        outputs=jsonata("$states.result"),
    )
    guard.protect(describe, f"{name} describe")
    wait = sfn.Wait.jsonata(
        scope,
        f"{name} wait",
        time=sfn.WaitTime.seconds(jsonata(f"${wait_s}")),
        assign={
            polls: jsonata(f"${polls} + 1"),
            wait_s: jsonata(f"$round($min([${wait_s} * {policy.backoff}, {policy.max_seconds}]))"),
        },
    )
    wait.next(describe)
    exhausted = guard.fail(
        scope,
        f"{name} gave up",
        "PollExhausted",
        f"{resource} & ' is still ' & ${status_v} & ' after {policy.max_polls} polls "
        f"(about {policy.budget_hours():.1f} hours)'",
    )
    failed = guard.fail(
        scope,
        f"{name} failed",
        "ResourceFailed",
        f"{resource} & ' is ' & ${status_v} & (${reason_v} != '' ? ': ' & ${reason_v} : '')",
    )
    check = (
        sfn.Choice.jsonata(scope, f"{name} ready?")
        .when(
            sfn.Condition.jsonata(
                jsonata(
                    f"${status_v} in {literal(list(waiting))} and ${polls} >= {policy.max_polls}"
                )
            ),
            exhausted,
        )
        .when(sfn.Condition.jsonata(jsonata(f"${status_v} in {literal(list(waiting))}")), wait)
        .when(sfn.Condition.jsonata(jsonata(f"$not(${status_v} in {literal(list(done))})")), failed)
    )
    ready = sfn.Pass.jsonata(scope, f"{name} ready")
    check.otherwise(ready)
    start.next(describe).next(check)
    return sfn.Chain.custom(start, [ready], ready)
