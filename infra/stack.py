"""One deployment: composes the constructs and wires the grants between them."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra import layout
from infra.functions import PersonalizeStepsFunction, RunPlanner
from infra.grants import PrefixGrant
from infra.personalize_access import PersonalizeAccess
from infra.sagemaker_role import SageMakerRole
from infra.storage import Storage
from infra.triggers import RetrainingSchedule, UploadTrigger
from infra.workflows import jobs
from infra.workflows.fm_knn import FmKnnWorkflow
from infra.workflows.personalize import PersonalizeWorkflow
from infra.workflows.run import Resources
from recops import names, workflow_choice
from recops.config import PipelineConfig


class RecopsStack(Stack):
    """Environment-agnostic: deployable to any account and region after `cdk bootstrap`."""

    def __init__(self, scope: Construct, *, config: PipelineConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            config.prefix,
            stack_name=config.prefix,
            description=f"recops recommendation pipeline '{config.prefix}'",
            **kwargs,
        )
        kms_key = (
            kms.Key.from_key_arn(self, "DataKey", config.kms_key_arn)
            if config.kms_key_arn
            else None
        )
        self.storage = Storage(self, "Storage", retain_data=config.retain_data, kms_key=kms_key)
        data, artifacts = self.storage.data, self.storage.artifacts
        self.personalize = PersonalizeAccess(
            self,
            "Personalize",
            grants=[
                PrefixGrant(data, layout.DATA.personalize_import),
                PrefixGrant(artifacts, layout.ARTIFACTS.personalize_batch_input),
                PrefixGrant(artifacts, layout.ARTIFACTS.personalize_batch_output, write=True),
            ],
            kms_key=kms_key,
        )
        self.sagemaker = SageMakerRole(
            self,
            "SageMaker",
            job_name_prefix=names.owned_prefix(config.prefix),
            grants=[
                PrefixGrant(data, layout.DATA.raw),
                PrefixGrant(data, layout.DATA.prepared, write=True),
                PrefixGrant(data, layout.DATA.personalize_import, write=True),
                PrefixGrant(artifacts, layout.ARTIFACTS.code),
                PrefixGrant(artifacts, layout.ARTIFACTS.runs),
                PrefixGrant(artifacts, layout.ARTIFACTS.personalize_batch_input, write=True),
                PrefixGrant(artifacts, layout.ARTIFACTS.personalize_batch_output),
                PrefixGrant(artifacts, layout.ARTIFACTS.models, write=True),
                PrefixGrant(artifacts, layout.ARTIFACTS.predictions, write=True),
                PrefixGrant(artifacts, layout.ARTIFACTS.reports, write=True),
            ],
            kms_key=kms_key,
        )
        self.topic = sns.Topic(
            self,
            "Notifications",
            display_name=f"recops {config.prefix}",
            # AWS's own SNS key: a customer key would need SNS in its key policy too
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        self.code = jobs.TrainingCode(self, "TrainingCode")
        self.code.grant_read(self.sagemaker.role)
        self.personalize_steps = PersonalizeStepsFunction(
            self,
            "PersonalizeSteps",
            stack_prefix=config.prefix,
            personalize_role=self.personalize.role,
        )
        self.planner = RunPlanner(self, "Planner", data=data, stack_prefix=config.prefix)
        uses = Resources(
            data=data,
            artifacts=artifacts,
            personalize_role=self.personalize.role,
            sagemaker_role=self.sagemaker.role,
            steps=self.personalize_steps.function,
            planner=self.planner.function,
            topic=self.topic,
            code=self.code,
            images=jobs.Images(self, "Images"),
            kms_key=kms_key,
        )
        self.fm_knn_workflow = FmKnnWorkflow(self, "FmKnnWorkflow", config=config, uses=uses)
        self.personalize_workflow = PersonalizeWorkflow(
            self,
            "PersonalizeWorkflow",
            config=config,
            uses=uses,
            fm_knn=self.fm_knn_workflow.machine,
        )
        machine = self.personalize_workflow.machine
        self.trigger = UploadTrigger(
            self,
            "UploadTrigger",
            data=data,
            personalize_machine=machine,
            fm_knn_machine=self.fm_knn_workflow.machine,
            stack_prefix=config.prefix,
        )
        if config.retraining is not None:
            # the machine `recops start` chooses for the deployed config (one rule)
            chosen = workflow_choice.choose(config.model_dump(mode="json", exclude_none=True))
            scheduled = machine if chosen.machine == "personalize" else self.fm_knn_workflow.machine
            RetrainingSchedule(self, "Retraining", machine=scheduled, retraining=config.retraining)
        if config.notifications.email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.notifications.email))
        self._outputs()

    def _outputs(self) -> None:
        values = {
            "DataBucketName": self.storage.data.bucket_name,
            "ArtifactsBucketName": self.storage.artifacts.bucket_name,
            "AccessLogsBucketName": self.storage.access_logs.bucket_name,
            "PersonalizeRoleArn": self.personalize.role.role_arn,
            "SageMakerRoleArn": self.sagemaker.role.role_arn,
            "PersonalizeStateMachineArn": self.personalize_workflow.machine.state_machine_arn,
            "FmKnnStateMachineArn": self.fm_knn_workflow.machine.state_machine_arn,
            "NotificationTopicArn": self.topic.topic_arn,
        }
        for name, value in values.items():
            CfnOutput(self, name, value=value)
