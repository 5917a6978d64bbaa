"""IAM building blocks shared by the constructs: prefix grants and the statements they make.

Whoever calls a service owns the grant for it; these helpers only say once how a prefix of a
bucket, or a customer KMS key, turns into the narrowest statements that work.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3


@dataclass(frozen=True)
class PrefixGrant:
    """Read (or read and write) rights on one prefix of one bucket, for a role or a service."""

    bucket: s3.IBucket
    prefix: str
    write: bool = False
    read: bool = True


def kms_statement(key: kms.IKey) -> iam.PolicyStatement:
    """What SSE-KMS on S3 needs: Decrypt to read objects, GenerateDataKey to write them.

    (IKey.grant_encrypt_decrypt would add the kms:ReEncrypt* and GenerateDataKey* wildcards.)
    """
    return iam.PolicyStatement(
        actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn]
    )


def prefix_statements(grant: PrefixGrant) -> list[iam.PolicyStatement]:
    """Object rights below the prefix, and listing limited to it."""
    reads = ["s3:GetObject"] if grant.read else []
    writes = ["s3:PutObject", "s3:AbortMultipartUpload"] if grant.write else []
    actions = reads + writes
    return [
        iam.PolicyStatement(
            actions=actions,
            resources=[grant.bucket.arn_for_objects(f"{grant.prefix}*")],
        ),
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[grant.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [grant.prefix, f"{grant.prefix}*"]}},
        ),
    ]
