"""One Personalize resource as the state machine makes it: the describe-or-create Lambda step,
then a bounded poll of its status (no Lambda per poll). What each family is polled with comes
from lambdas/personalize/README.md ("What the state machine polls and matches").
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.workflows.core import LONG, QUICK, Guard, PollPolicy, bounded_poll, jsonata


@dataclass(frozen=True)
class Family:
    """A resource family: its step, how it is described, and how long it takes."""

    step: str
    noun: str  # DatasetGroup -> describeDatasetGroup, {"DatasetGroupArn": ...}, DatasetGroup.Status
    arn_type: str  # the resource type in its ARN, for the describe grant
    policy: PollPolicy = QUICK
    updatable: bool = False  # campaigns and recommenders: an update has its own status
    # botocore's model spells batch job statuses PENDING / IN PROGRESS, while the service and
    # AWS's own automation report CREATE PENDING / CREATE IN_PROGRESS: both wait
    also_waiting: tuple[str, ...] = ()


FAMILIES = {
    f.step: f
    for f in (
        Family("datasetGroup", "DatasetGroup", "dataset-group"),
        Family("dataset", "Dataset", "dataset"),
        Family("datasetImportJob", "DatasetImportJob", "dataset-import-job", LONG),
        Family("filter", "Filter", "filter"),
        Family("eventTracker", "EventTracker", "event-tracker"),
        Family("solution", "Solution", "solution"),
        Family("solutionVersion", "SolutionVersion", "solution", LONG),
        Family(
            "batchInferenceJob",
            "BatchInferenceJob",
            "batch-inference-job",
            LONG,
            also_waiting=("PENDING", "IN PROGRESS"),
        ),
        Family("campaign", "Campaign", "campaign", QUICK, updatable=True),
        Family("recommender", "Recommender", "recommender", LONG, updatable=True),
    )
}


def owned_arns(scope: Construct, arn_type: str, stack_prefix: str) -> list[str]:
    """The stack's resources of one type: names start with `<prefix>--`. Event trackers are
    the exception: their ARN carries a service-made id, not the name."""
    name = "*" if arn_type == "event-tracker" else f"{stack_prefix}--*"
    return [
        Stack.of(scope).format_arn(service="personalize", resource=arn_type, resource_name=name)
    ]


@dataclass
class PersonalizeSteps:
    """Builds ensure-and-wait chains for one state machine (state names must be unique)."""

    scope: Construct
    function: lambda_.IFunction
    stack_prefix: str

    def ensure(
        self, label: str, step: str, event: dict, guard: Guard, *, first: dict | None = None
    ) -> sfn.Chain:
        """Lambda step, then poll; the chain's output is the last Describe response and `$arn`
        holds the resource's ARN (`$<prefix>arn` in an inner scope). `event` values are JSONata expressions or literals."""
        family = FAMILIES[step]
        call = tasks.LambdaInvoke.jsonata(
            self.scope,
            f"{label}: ensure",
            lambda_function=self.function,
            payload=sfn.TaskInput.from_object({"step": step, **event}),
            assign={
                **(first or {}),  # what the first state of an iteration keeps from its item
                guard.var("arn"): jsonata("$states.result.Payload.arn"),
                guard.var("updated"): jsonata("$states.result.Payload.updated = true"),
            },
            outputs=jsonata("$states.result.Payload"),
            retry_on_service_exceptions=False,  # the guard's Retry covers them, once
        )
        guard.protect(call, f"{label}: ensure")
        arn, updated = f"${guard.var('arn')}", f"${guard.var('updated')}"
        status = f"$states.result.{family.noun}.Status"
        if family.updatable:
            update = f"$states.result.{family.noun}.Latest{family.noun}Update.Status"
            status = f"({updated} and $exists({update}) ? {update} : {status})"
        poll = bounded_poll(
            self.scope,
            label,
            guard=guard,
            service="personalize",
            action=f"describe{family.noun}",
            parameters={f"{family.noun}Arn": jsonata(arn)},
            iam_resources=owned_arns(self.scope, family.arn_type, self.stack_prefix),
            status=status,
            reason=f"$states.result.{family.noun}.FailureReason",
            resource=f"'{family.noun} ' & {arn}",
            policy=family.policy,
            waiting=("CREATE PENDING", "CREATE IN_PROGRESS", *family.also_waiting),
        )
        return sfn.Chain.start(call).next(poll)
