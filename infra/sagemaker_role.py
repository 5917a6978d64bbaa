"""The role SageMaker processing, training and transform jobs run as.

No AWS-managed policy: AmazonSageMakerFullAccess would let a job read every bucket in the
account. The jobs get their own prefixes, their own log streams and the images they pull.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.grants import PrefixGrant, kms_statement, prefix_statements
from infra.nag import acknowledge_wildcards

JOB_KINDS = ("ProcessingJobs", "TrainingJobs", "TransformJobs")
# Built-in algorithm and framework images the workflows run.
IMAGE_REPOSITORIES = ("factorization-machines", "knn", "sagemaker-scikit-learn")


class SageMakerRole(Construct):
    """job_name_prefix: what every job name of the stack starts with, separator included
    (`recops.names.owned_prefix`, e.g. `recops-demo--`), so no other stack's jobs match."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        job_name_prefix: str,
        grants: list[PrefixGrant],
        kms_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="Runs this stack's SageMaker processing, training and transform jobs.",
        )
        data_access = [s for grant in grants for s in prefix_statements(grant)]
        log_groups = [
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/{kind}"
            for kind in JOB_KINDS
        ]
        job_logs = [
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=log_groups,
            ),
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{group}:log-stream:{job_name_prefix}*" for group in log_groups],
            ),
        ]
        images = [
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[
                    f"arn:{stack.partition}:ecr:{stack.region}:*:repository/{repo}"
                    for repo in IMAGE_REPOSITORIES
                ],
            )
        ]
        unscoped = [
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            ),
        ]
        for statement in data_access + job_logs + images + unscoped:
            self.role.add_to_policy(statement)
        if kms_key is not None:
            self.role.add_to_policy(kms_statement(kms_key))
        acknowledge_wildcards(
            self.role,
            data_access,
            "SageMaker jobs read and write objects only below the stack's own prefixes.",
        )
        acknowledge_wildcards(
            self.role,
            job_logs,
            f"Log streams are named by SageMaker after the job ({job_name_prefix}*).",
        )
        acknowledge_wildcards(
            self.role,
            images,
            "Built-in algorithm images live in AWS-owned registries whose account differs "
            "by region.",
        )
        acknowledge_wildcards(
            self.role,
            unscoped,
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
            "scoping; metrics are limited to the /aws/sagemaker/* namespace by condition.",
        )
