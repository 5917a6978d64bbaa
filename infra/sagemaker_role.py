"""The role SageMaker processing, training and transform jobs run as.

No AWS-managed policy: AmazonSageMakerFullAccess would let a job read every bucket in the
account. The jobs get their own prefixes, their own log streams and the images they pull.

**Names.** Every job, log stream and trust pattern is `<job_name_prefix>*`, where the prefix is
`recops.names.owned_prefix(stack)` = `<stack>--`. A stack prefix never contains "--" (the
config and `names.check_prefix` refuse it), so `recops-demo--*` matches no name of stack
`recops-demo-eu` (`recops-demo-eu--…`): after `recops-demo-` comes "e", never the second "-".

**Two policies.** The role's default policy holds only scoped statements; the two actions that
support no resource-level scoping (`ecr:GetAuthorizationToken`, `cloudwatch:PutMetricData`)
live in their own policy, and their cdk-nag acknowledgment of `Resource: "*"` is on that policy
only. A later `Resource: "*"` added to the role is therefore reported and fails synth.
"""

from __future__ import annotations

import re

from aws_cdk import Aws, CfnMapping, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.grants import PrefixGrant, kms_statement, prefix_statements
from infra.nag import acknowledge_wildcards
from recops import images

SAGEMAKER = "sagemaker.amazonaws.com"
JOB_KINDS = ("ProcessingJobs", "TrainingJobs", "TransformJobs")
# The SageMaker resource types whose ARN a job's role assumption carries as aws:SourceArn
# (https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html:
# "SageMaker Processing Jobs", "SageMaker Training Jobs", "SageMaker AI Batch Transform Jobs").
SOURCE_ARN_TYPES = ("processing-job", "training-job", "transform-job")
# Built-in algorithm and framework images the workflows run (`recops/sagemaker_images.json`).
IMAGE_REPOSITORIES = ("factorization-machines", "knn", "sagemaker-scikit-learn")


def registry_key(repository: str) -> str:
    """The repository's column in the registry mapping (CloudFormation allows only [A-Za-z0-9])."""
    return re.sub(r"[^A-Za-z0-9]", "", repository)


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
        self.job_name_prefix = job_name_prefix
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=self._job_principal(),
            description="Runs this stack's SageMaker processing, training and transform jobs.",
        )
        self.role.assume_role_policy.add_statements(self._model_trust())
        data_access = [s for grant in grants for s in prefix_statements(grant)]
        job_logs = self._log_statements()
        for statement in [*data_access, *job_logs, self._image_statement()]:
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
            f"Log groups in the ':*' form CloudWatch Logs requires; log streams named by "
            f"SageMaker after the job ({job_name_prefix}*).",
        )
        self.unscopable = self._unscopable_policy()

    def _job_principal(self) -> iam.ServicePrincipal:
        """SageMaker, for this account's jobs named by this stack only (confused deputy)."""
        stack = Stack.of(self)
        jobs = [
            stack.format_arn(
                service="sagemaker", resource=kind, resource_name=f"{self.job_name_prefix}*"
            )
            for kind in SOURCE_ARN_TYPES
        ]
        return iam.ServicePrincipal(
            SAGEMAKER,
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": jobs},
            },
        )

    def _model_trust(self) -> iam.PolicyStatement:
        """CreateModel's check that SageMaker may assume the model's execution role.

        A transform job runs as its model's ExecutionRoleArn (CreateTransformJob takes no role);
        the confused-deputy page gives the transform job's ARN as the aws:SourceArn ("SageMaker
        AI Batch Transform Jobs"), so the job statement covers the transform itself. What
        CreateModel presents when it checks the role is not documented for batch transform and
        could NOT be verified offline. The page's "SageMaker AI Inference" section (models and
        endpoints) gives `arn:<partition>:sagemaker:<region>:<account>:*` and says its asterisk
        "does not stand for wildcard", so it is compared literally (StringEquals): this statement
        admits that one value, i.e. a model or endpoint of this account (the account-wide scope
        aws:SourceAccount gave before; passing the role still needs iam:PassRole on it), and no
        job of another stack. If a real CreateModel is refused with "Could not assume role",
        this statement is the one to correct.
        """
        stack = Stack.of(self)
        inference = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:*"
        return iam.PolicyStatement(
            actions=["sts:AssumeRole"],
            principals=[iam.ServicePrincipal(SAGEMAKER)],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account, "aws:SourceArn": inference}
            },
        )

    def _log_statements(self) -> list[iam.PolicyStatement]:
        """The job log groups and the stack's own streams in them.

        Log-group actions take the group's ARN with a trailing `:*` ("Use the second version,
        with the trailing :*, ... when specifying permissions in IAM policies" except for the
        tagging actions: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html;
        the resource types per action:
        https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html).
        """
        stack = Stack.of(self)
        groups = [
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/{kind}"
            for kind in JOB_KINDS
        ]
        return [
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=[f"{group}:*" for group in groups],
            ),
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"{group}:log-stream:{self.job_name_prefix}*" for group in groups],
            ),
        ]

    def _image_statement(self) -> iam.PolicyStatement:
        """Pulling the built-in images, from the registry account the image table names for
        the deploying region (a CfnMapping region -> account, looked up at deploy)."""
        stack = Stack.of(self)
        table = images.table()["images"]
        regions = images.table()["hosts"]
        registries = CfnMapping(
            self,
            "ImageRegistries",
            mapping={
                region: {
                    registry_key(repo): table[repo]["registries"][region]
                    for repo in IMAGE_REPOSITORIES
                }
                for region in regions
                # a region lacking one of the images has no row: the lookup fails at deploy
                if all(region in table[repo]["registries"] for repo in IMAGE_REPOSITORIES)
            },
        )
        return iam.PolicyStatement(
            actions=[
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            resources=[
                stack.format_arn(
                    service="ecr",
                    account=registries.find_in_map(Aws.REGION, registry_key(repo)),
                    resource="repository",
                    resource_name=repo,
                )
                for repo in IMAGE_REPOSITORIES
            ],
        )

    def _unscopable_policy(self) -> iam.Policy:
        """The two actions IAM cannot scope, apart from the role's default policy so that their
        `Resource: "*"` acknowledgment covers this policy alone."""
        unscopable = [
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            ),
        ]
        policy = iam.Policy(self, "UnscopableActions", statements=unscopable, roles=[self.role])
        acknowledge_wildcards(
            policy,
            unscopable,
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
            "scoping; metrics are limited to the /aws/sagemaker/* namespace by condition.",
        )
        return policy
