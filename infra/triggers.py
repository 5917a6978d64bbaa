"""What starts a run besides `recops start`: a config uploaded under the data bucket's `train/`
(S3 → EventBridge → the trigger Lambda, which checks the config and starts the machine unless a
run is already going, so a burst of uploads cannot start a burst of billable training), and, when the config asks, a retraining schedule (EventBridge Scheduler)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import layout
from infra.functions import logged_function
from infra.lambda_asset import RUNS_ARCHITECTURE, RUNS_RUNTIME, runs_code
from infra.nag import acknowledge_wildcards
from recops.config import RetrainingConfig

UPLOAD_PREFIX = layout.DATA.uploads


class UploadTrigger(Construct):
    """The trigger Lambda and its rule. It starts the machine `recops start` would choose for the
    uploaded config (lambdas/runs/trigger.py), so it may start, and list the running executions
    of, either machine."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: s3.IBucket,
        personalize_machine: sfn.IStateMachine,
        fm_knn_machine: sfn.IStateMachine,
        stack_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = logged_function(
            self,
            "Function",
            description=f"recops {stack_prefix}: a config uploaded under {UPLOAD_PREFIX} starts a run",
            code=runs_code(),
            handler="runs.trigger.handler",
            runtime=RUNS_RUNTIME,
            architecture=RUNS_ARCHITECTURE,
            timeout=Duration.minutes(1),
            environment={
                "PERSONALIZE_STATE_MACHINE_ARN": personalize_machine.state_machine_arn,
                "FM_KNN_STATE_MACHINE_ARN": fm_knn_machine.state_machine_arn,
                "STACK_PREFIX": stack_prefix,
                "POWERTOOLS_SERVICE_NAME": "recops-trigger",
            },
        )
        role = self.function.role
        assert role is not None
        stack = Stack.of(self)
        statements = [
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[data.arn_for_objects(f"{UPLOAD_PREFIX}*")]
            ),
            iam.PolicyStatement(
                actions=["states:StartExecution", "states:ListExecutions"],
                resources=[
                    personalize_machine.state_machine_arn,
                    fm_knn_machine.state_machine_arn,
                ],
            ),
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[
                    stack.format_arn(
                        service="events", resource="event-bus", resource_name="default"
                    )
                ],
            ),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        acknowledge_wildcards(
            role, statements, f"The trigger reads only uploaded configs under {UPLOAD_PREFIX}."
        )
        if data.encryption_key is not None:
            data.encryption_key.grant_decrypt(role)
        events.Rule(
            self,
            "Uploaded",
            description=f"recops {stack_prefix}: a config uploaded under {UPLOAD_PREFIX}",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [data.bucket_name]},
                    "object": {"key": [{"prefix": UPLOAD_PREFIX}]},
                },
            ),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )


class RetrainingSchedule(Construct):
    """Starts the machine with the deployed config on the config's schedule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        machine: sfn.IStateMachine,
        retraining: RetrainingConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="Lets EventBridge Scheduler start this stack's retraining runs.",
        )
        machine.grant_start_execution(role)
        scheduler.CfnSchedule(
            self,
            "Schedule",
            description="recops: re-import the data and retrain with the deployed config",
            schedule_expression=retraining.schedule,
            schedule_expression_timezone=retraining.timezone,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=machine.state_machine_arn, role_arn=role.role_arn, input="{}"
            ),
        )
