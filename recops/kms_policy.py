"""What a customer KMS key (config `kms_key_arn`) must allow for Personalize and SageMaker.

Amazon Personalize's page "Giving Amazon Personalize permission to use your AWS KMS key"
(`PERSONALIZE_KMS_DOC`) says that for dataset groups, import jobs, batch inference jobs (and
exports, segments, metric attributions) the key policy must let Personalize and its service
role use the key for Decrypt, GenerateDataKey, DescribeKey, CreateGrant and ListGrants, and the
role's IAM policy must allow the same less CreateGrant (only the key policy needs it; an import
job needs the key policy alone). The stack's Personalize role gets `role_statements`; the key
policy is the key owner's, so `key_policy_statements` renders what to add to it
(`python -m recops.kms_policy`, or `recops kms-policy` from a deployed stack's outputs).

`kms:ViaService` where a service allows it: SageMaker jobs touch the key only through S3
(SSE-KMS objects), so the SageMaker role's statement holds only for requests S3 makes for it
(`s3.<region>.amazonaws.com`). Personalize is not so restricted: it uses the key itself with
its service principal and with the role's own session (dataset groups, grants), and a request
a principal makes directly carries no `kms:ViaService`, so that condition would deny it. The
Personalize service principal's statement carries `aws:SourceAccount` and `aws:SourceArn`
instead (the confused-deputy guard the bucket policy uses for the same principal).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

PERSONALIZE_KMS_DOC = (
    "https://docs.aws.amazon.com/personalize/latest/dg/granting-personalize-key-access.html"
)
PERSONALIZE_SERVICE = "personalize.amazonaws.com"
# The page's list, in its order.
KEY_POLICY_ACTIONS = (
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:ListGrants",
)
KEY_POLICY_ONLY = ("kms:CreateGrant",)
ROLE_ACTIONS = tuple(a for a in KEY_POLICY_ACTIONS if a not in KEY_POLICY_ONLY)
# What SSE-KMS needs through S3: Decrypt to read objects, GenerateDataKey to write them.
S3_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


# The README's example (tests/test_kms_policy.py checks the README shows exactly its rendering).
EXAMPLE = {
    "account": "111122223333",
    "region": "us-east-1",
    "personalize_role_arn": "arn:aws:iam::111122223333:role/recops-demo-PersonalizeServiceRoleEXAMPLE",
    "sagemaker_role_arn": "arn:aws:iam::111122223333:role/recops-demo-SageMakerRoleEXAMPLE",
}


def via_s3(region: str) -> dict[str, Any]:
    return {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}


def role_statements(key_arn: str) -> list[dict[str, Any]]:
    """The Personalize service role's IAM statements for the key (infra/personalize_access.py)."""
    return [
        {
            "Sid": "PersonalizeUsesTheDataKey",
            "Effect": "Allow",
            "Action": list(ROLE_ACTIONS),
            "Resource": key_arn,
        }
    ]


def key_policy_statements(
    *,
    account: str,
    region: str,
    personalize_role_arn: str,
    sagemaker_role_arn: str | None = None,
    partition: str = "aws",
) -> list[dict[str, Any]]:
    """Statements to add to the key's policy (keep the statements it already has)."""
    statements = [
        {
            "Sid": "PersonalizeServiceUsesTheKey",
            "Effect": "Allow",
            "Principal": {"Service": PERSONALIZE_SERVICE},
            "Action": list(KEY_POLICY_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:personalize:{region}:{account}:*"},
            },
        },
        {
            "Sid": "PersonalizeRoleUsesTheKey",
            "Effect": "Allow",
            "Principal": {"AWS": personalize_role_arn},
            "Action": list(KEY_POLICY_ACTIONS),
            "Resource": "*",
        },
    ]
    if sagemaker_role_arn:
        statements.append(
            {
                "Sid": "SageMakerRoleUsesTheKeyThroughS3",
                "Effect": "Allow",
                "Principal": {"AWS": sagemaker_role_arn},
                "Action": list(S3_ACTIONS),
                "Resource": "*",
                "Condition": via_s3(region),
            }
        )
    return statements


def render(**kwargs: Any) -> str:
    """The statements as the README shows them: a JSON list to paste into the key's Statement."""
    return json.dumps(key_policy_statements(**kwargs), indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recops.kms_policy",
        description="Print the key-policy statements the stack's roles need on a customer key "
        f"({PERSONALIZE_KMS_DOC}).",
    )
    parser.add_argument("--account", required=True, help="the key's (and the stack's) account")
    parser.add_argument("--region", required=True, help="the stack's region")
    parser.add_argument("--personalize-role-arn", required=True, help="output PersonalizeRoleArn")
    parser.add_argument("--sagemaker-role-arn", help="output SageMakerRoleArn")
    parser.add_argument("--partition", default="aws")
    args = parser.parse_args(argv)
    print(
        render(
            account=args.account,
            region=args.region,
            personalize_role_arn=args.personalize_role_arn,
            sagemaker_role_arn=args.sagemaker_role_arn,
            partition=args.partition,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
