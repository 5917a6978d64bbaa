"""The stack's buckets: data, artifacts and the access log bucket they both log to."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import (
    CustomResource,
    Duration,
    RemovalPolicy,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import layout
from infra.nag import acknowledge, acknowledge_wildcards

EMPTY_BUCKETS_CODE = Path(__file__).resolve().parents[1] / "lambdas" / "empty_buckets"


class Storage(Construct):
    """Private, encrypted, TLS-only, access-logged buckets.

    With retain_data the buckets outlive the stack; without it a custom resource empties
    them so that `cdk destroy` removes them too.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        retain_data: bool,
        kms_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # Server access logging can only deliver to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(90))],
            removal_policy=removal,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "AccessLogs is the access-log target of the data and artifacts buckets; "
            "logging it into itself would loop.",
        )
        self.data = self._bucket("Data", "data/", removal, kms_key, versioned=True)
        # Object events go to EventBridge (an uploaded config starts a run): set on the bucket
        # itself, not through CDK's notifications custom resource and its extra Lambda.
        data_bucket = self.data.node.default_child
        data_bucket.add_property_override(  # type: ignore[union-attr]
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
        self.artifacts = self._bucket("Artifacts", "artifacts/", removal, kms_key, versioned=False)
        self.buckets = [self.data, self.artifacts, self.access_logs]
        if not retain_data:
            self._empty_on_delete()

    def _bucket(
        self,
        construct_id: str,
        log_prefix: str,
        removal: RemovalPolicy,
        kms_key: kms.IKey | None,
        *,
        versioned: bool,
    ) -> s3.Bucket:
        rules = [
            s3.LifecycleRule(
                id="expire-tmp",
                prefix=layout.TMP,
                expiration=Duration.days(layout.TMP_EXPIRY_DAYS),
            ),
            s3.LifecycleRule(
                id="abort-uploads",
                abort_incomplete_multipart_upload_after=Duration.days(1),
            ),
        ]
        if versioned:
            rules.append(
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(30),
                )
            )
        return s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.KMS if kms_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=kms_key,
            bucket_key_enabled=bool(kms_key),
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=versioned,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=rules,
            removal_policy=removal,
        )

    def _empty_on_delete(self) -> None:
        log_group = logs.LogGroup(
            self,
            "EmptyBucketsLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            "EmptyBucketsRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Empties the stack's own buckets when the stack is deleted.",
        )
        log_group.grant_write(role)
        statements = [
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:ListBucketVersions"],
                resources=[b.bucket_arn for b in self.buckets],
            ),
            iam.PolicyStatement(
                actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[b.arn_for_objects("*") for b in self.buckets],
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        acknowledge_wildcards(
            role,
            statements,
            "Emptying a bucket on stack deletion means deleting every object in it; "
            "only the stack's own three buckets are named.",
        )
        function = lambda_.Function(
            self,
            "EmptyBuckets",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(EMPTY_BUCKETS_CODE)),
            timeout=Duration.minutes(15),
            memory_size=256,
            role=role,
            log_group=log_group,
            description="Empties the stack's buckets on stack deletion.",
        )
        resource = CustomResource(
            self,
            "EmptyOnDelete",
            service_token=function.function_arn,
            resource_type="Custom::EmptyBuckets",
            properties={"BucketNames": [b.bucket_name for b in self.buckets]},
        )
        # The role's policy must outlive the custom resource, or the delete runs without rights.
        resource.node.add_dependency(role)
