"""What every recops state machine shares: its role, the failure path and the Guard that leads
there, processing jobs on the training code, and the machine itself (JSONata, logs, X-Ray, a
timeout). The Personalize and FM → KNN workflows are subclasses that add their own states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import layout
from infra.grants import kms_statement
from infra.nag import acknowledge_resources
from infra.workflows import jobs
from infra.workflows.core import RUN_SUFFIX, Guard, jsonata
from infra.workflows.outcome import failure_path
from recops import names
from recops.config import PipelineConfig


def execution_arns(machine: sfn.IStateMachine) -> str:
    """The executions of `machine` (DescribeExecution's and StopExecution's resource)."""
    return Stack.of(machine).format_arn(
        service="states",
        resource="execution",
        resource_name=f"{machine.state_machine_name}:*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


@dataclass(frozen=True)
class Resources:
    """What the workflows use and do not own (the FM → KNN machine needs no Personalize part)."""

    data: s3.IBucket
    artifacts: s3.IBucket
    sagemaker_role: iam.IRole
    planner: lambda_.IFunction
    topic: sns.ITopic
    code: jobs.TrainingCode
    images: jobs.Images
    personalize_role: iam.IRole | None = None
    steps: lambda_.IFunction | None = None
    kms_key: kms.IKey | None = None


class RunWorkflow(Construct):
    """A run's machine. `failure_record` names the file a failure writes under runs/<run>/ (a
    child run shares its parent's run id, so it writes its own); `child`: a machine this one
    starts without waiting, and the variable holding that execution's ARN, stopped when this
    run fails so that nothing trains on for nobody."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        uses: Resources,
        failure_record: str = "failure.json",
        child: tuple[sfn.IStateMachine, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config, self.uses = config, uses
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("states.amazonaws.com"))
        self.failed = failure_path(
            self,
            artifacts=uses.artifacts,
            runs_prefix=layout.ARTIFACTS.runs,
            topic=uses.topic,
            stack=config.prefix,
            record=failure_record,
        )
        if child is not None:
            self.failed = self._stop_child_first(*child)
        self.guard = Guard(self.failed, retry_on_not_ready=True)

    def _stop_child_first(self, machine: sfn.IStateMachine, variable: str) -> sfn.IChainable:
        running = f"$exists({variable}) and {variable} != null"
        stop = tasks.CallAwsService.jsonata(
            self,
            "Failure: stop the child run",
            service="sfn",
            action="stopExecution",
            iam_action="states:StopExecution",
            iam_resources=[execution_arns(machine)],
            parameters={
                "ExecutionArn": jsonata(variable),
                "Cause": jsonata("'its parent run failed: ' & $failure.state"),
            },
            outputs=jsonata("$states.input"),
        )
        stop.add_retry(errors=["States.ALL"], max_attempts=2)
        stop.add_catch(self.failed, errors=["States.ALL"])  # a child already ended: go on
        stop.next(self.failed)
        choice = sfn.Choice.jsonata(self, "Failure: a child running?")
        choice.when(sfn.Condition.jsonata(jsonata(running)), stop).otherwise(self.failed)
        return choice

    def job(self, name: str, label: str, **kwargs: Any) -> sfn.CustomState:
        """`python3 -m training.<module>` as this run's processing job named by `label`."""
        return jobs.processing_job(
            self,
            name,
            guard=self.guard,
            machine_role=self.role,
            job_role=self.uses.sagemaker_role,
            code=self.uses.code,
            image=self.uses.images.uri("sklearn"),
            job_name=jsonata(f"$run.contracts.sagemaker.jobs.`{label}` & {RUN_SUFFIX}"),
            instance_type=jsonata("$run.contracts.sagemaker.instanceTypes.processing"),
            tags=jsonata("$run.contracts.sagemaker.tags"),
            job_name_prefix=names.owned_prefix(self.config.prefix),
            volume_size_gb=jsonata("$run.contracts.sagemaker.volumeSizeGb"),
            **kwargs,
        )

    def build_machine(self, definition: sfn.IChainable, *, kind: str, what: str) -> None:
        log_group = logs.LogGroup(
            self,
            "Log",
            # the prefix Step Functions recommends: it keeps the account's CloudWatch Logs
            # resource policy short (https://docs.aws.amazon.com/step-functions/latest/dg/bp-cwl.html)
            log_group_name=f"/aws/vendedlogs/states/{self.config.prefix}-{kind}",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.machine = sfn.StateMachine(
            self,
            "Machine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            query_language=sfn.QueryLanguage.JSONATA,
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL),
            timeout=Duration.days(7),
            comment=f"recops {self.config.prefix}: {what}",
        )
        if self.uses.kms_key is not None:
            self.role.add_to_principal_policy(kms_statement(self.uses.kms_key))

    def acknowledge(
        self, reasons: dict[str, list[str]], *, sagemaker: tuple[str, ...] = ("processing-job",)
    ) -> None:
        """Why each wildcard in the role is as narrow as the API allows: the shared ones here,
        the workflow's own in `reasons`; `sagemaker`: the resource types its jobs create."""
        uses, prefix = self.uses, self.config.prefix
        shared = {
            f"SageMaker jobs (and models) of this stack are named {prefix}--<job>-<run id>; "
            "the .sync integrations create, describe and stop only those.": [
                Stack.of(self).format_arn(
                    service="sagemaker", resource=kind, resource_name=f"{prefix}--*"
                )
                for kind in sagemaker
            ],
            "LambdaInvoke grants the function and its versions and aliases (<function arn>:*); "
            "only the stack's own step functions are named.": [
                f"{f.function_arn}:*" for f in (uses.steps, uses.planner) if f is not None
            ],
            "The run writes its own files (options, context, failure record) under runs/ and "
            "reads its leaderboard under reports/ of the artifacts bucket and prep's manifest "
            "under prepared/ of the data bucket only.": [
                uses.artifacts.arn_for_objects(f"{layout.ARTIFACTS.runs}*"),
                uses.artifacts.arn_for_objects(f"{layout.ARTIFACTS.reports}*"),
                uses.data.arn_for_objects(f"{layout.DATA.prepared}*"),
            ],
            "X-Ray tracing and CloudWatch PutMetricData have no resource-level permissions, so "
            "the API demands Resource '*'; PutMetricData is limited to the recops namespace.": [
                "*"
            ],
        }
        for reason, resources in {**shared, **reasons}.items():
            acknowledge_resources(self.role, resources, reason)
