"""The Lambda functions the workflows call, each with its own role, log group and tracing.

The Personalize steps function (lambdas/personalize) creates and describes Personalize
resources; its rights end at the stack's own names (`<prefix>--*`), except what the API cannot
scope (List* calls; event trackers, whose ARN carries a service-made id; the public recipes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import layout
from infra.lambda_asset import RUNS_ARCHITECTURE, RUNS_RUNTIME, python_code, runs_code
from infra.nag import acknowledge, acknowledge_wildcards

REPO = Path(__file__).resolve().parents[1]
# The resource families lambdas/personalize makes (a test checks this against its FAMILIES).
PERSONALIZE_NOUNS = (
    "Schema",
    "DatasetGroup",
    "Dataset",
    "DatasetImportJob",
    "Filter",
    "EventTracker",
    "Solution",
    "SolutionVersion",
    "BatchInferenceJob",
    "Campaign",
    "Recommender",
)
PERSONALIZE_ACTIONS = [
    *(f"personalize:{verb}{noun}" for noun in PERSONALIZE_NOUNS for verb in ("Create", "Describe")),
    "personalize:UpdateCampaign",
    "personalize:UpdateRecommender",
    "personalize:GetSolutionMetrics",
    "personalize:TagResource",
]
PERSONALIZE_LISTS = [f"personalize:List{noun}s" for noun in PERSONALIZE_NOUNS]


def logged_function(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    code: lambda_.Code,
    handler: str,
    runtime: lambda_.Runtime,
    timeout: Duration,
    environment: dict[str, str] | None = None,
    memory_size: int = 256,
    also_unscoped: str = "",
    **options: Any,
) -> lambda_.Function:
    """A function with its own role (logs to its own group only) and X-Ray tracing."""
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=logs.RetentionDays.THREE_MONTHS,
        removal_policy=RemovalPolicy.DESTROY,
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )
    log_group.grant_write(role)
    function = lambda_.Function(
        scope,
        construct_id,
        runtime=runtime,
        handler=handler,
        code=code,
        timeout=timeout,
        memory_size=memory_size,
        role=role,
        log_group=log_group,
        tracing=lambda_.Tracing.ACTIVE,
        environment=environment or {},
        description=description,
        **options,
    )
    if runtime == RUNS_RUNTIME:
        acknowledge(function, "AwsSolutions-L1", RUNS_RUNTIME_REASON)
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) has no resource-level "
        f"permissions; the API demands Resource '*'.{also_unscoped}",
    )
    return function


class PersonalizeStepsFunction(Construct):
    """lambdas/personalize: one function for every describe-or-create step."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stack_prefix: str,
        personalize_role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = logged_function(
            self,
            "Function",
            description=f"recops {stack_prefix}: describe-or-create for Personalize resources",
            code=python_code(REPO / "lambdas" / "personalize", lambda_.Runtime.PYTHON_3_14),
            handler="personalize.handlers.handler",
            runtime=lambda_.Runtime.PYTHON_3_14,
            timeout=Duration.minutes(2),
            environment={"POWERTOOLS_SERVICE_NAME": "recops-personalize"},
            also_unscoped=" So do the Personalize List calls (datasets, event trackers and "
            "solution versions are found by listing under their parent).",
        )
        stack = Stack.of(self)
        owned = stack.format_arn(
            service="personalize", resource="*", resource_name=f"{stack_prefix}--*"
        )
        statements = [
            iam.PolicyStatement(
                actions=PERSONALIZE_ACTIONS,
                resources=[
                    owned,
                    stack.format_arn(
                        service="personalize", resource="event-tracker", resource_name="*"
                    ),
                    f"arn:{stack.partition}:personalize:::recipe/*",
                ],
            ),
            # List* calls have no resource to scope to.
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[personalize_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "personalize.amazonaws.com"}},
            ),
        ]
        role = self.function.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=PERSONALIZE_LISTS, resources=["*"])
        )
        for statement in statements:
            role.add_to_principal_policy(statement)
        acknowledge_wildcards(
            role,
            statements,
            "Personalize resources are named <stack prefix>--<name>, so the wildcard ends at "
            "this stack's own resources; event trackers (ARN by a service-made id) and the "
            "public recipes cannot be scoped to names.",
        )


RUNS_RUNTIME_REASON = (
    "The run steps bundle pydantic-core as CPython 3.12 binary wheels (no Docker build); the "
    "offline account runs python3.12 functions in a real 3.12 interpreter, which a newer "
    "runtime's binaries would not load. Move both together when the local runtimes do."
)
PLANNER_UNSCOPED = (
    " So do the Personalize List calls and Service Quotas' quota reads the plan uses to check "
    "the account has room for the run."
)
PLANNER_LISTS = [
    f"personalize:List{noun}"
    for noun in ("DatasetGroups", "Solutions", "Filters", "Recommenders", "Campaigns")
]


def planner_statements(data: s3.IBucket) -> list[iam.PolicyStatement]:
    """What lambdas/runs/README.md says the plan reads: the data it checks, configs uploaded
    under train/, and the account's room (Personalize listings, Service Quotas)."""
    statements = [
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[data.bucket_arn],
            conditions={
                "StringLike": {
                    "s3:prefix": [
                        layout.DATA.raw,
                        f"{layout.DATA.raw}*",
                        layout.DATA.uploads,
                        f"{layout.DATA.uploads}*",
                    ]
                }
            },
        ),
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[
                data.arn_for_objects(f"{layout.DATA.raw}*"),
                data.arn_for_objects(f"{layout.DATA.uploads}*"),
            ],
        ),
        iam.PolicyStatement(
            actions=[*PLANNER_LISTS, "servicequotas:ListAWSDefaultServiceQuotas"],
            resources=["*"],
        ),
        iam.PolicyStatement(
            actions=["servicequotas:GetServiceQuota"],
            resources=[
                Stack.of(data).format_arn(
                    service="servicequotas", resource="personalize", resource_name="*"
                )
            ],
        ),
    ]
    if data.encryption_key is not None:  # reads only
        statements.append(
            iam.PolicyStatement(actions=["kms:Decrypt"], resources=[data.encryption_key.key_arn])
        )
    return statements


class RunPlanner(Construct):
    """lambdas/runs plan: the first state of every run (config, contracts, checks before any
    billable call). It reads the data it checks and asks Personalize and Service Quotas how much
    room the account has."""

    def __init__(
        self, scope: Construct, construct_id: str, *, data: s3.IBucket, stack_prefix: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = logged_function(
            self,
            "Function",
            description=f"recops {stack_prefix}: plan a run and refuse what Personalize would reject",
            code=runs_code(),
            handler="runs.plan.handler",
            runtime=RUNS_RUNTIME,
            architecture=RUNS_ARCHITECTURE,
            timeout=Duration.minutes(5),
            memory_size=512,
            environment={"DATA_BUCKET": data.bucket_name, "POWERTOOLS_SERVICE_NAME": "recops-plan"},
            also_unscoped=PLANNER_UNSCOPED,
        )
        role = self.function.role
        assert role is not None
        statements = planner_statements(data)
        for statement in statements:
            role.add_to_principal_policy(statement)
        acknowledge_wildcards(
            role,
            [s for s in statements if "*" not in s.resources],
            "The plan reads only the data it checks (raw/) and uploaded configs (train/).",
        )
