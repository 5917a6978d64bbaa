"""No `Resource: "*"` in the stack's policies except where the API demands it, each case named."""

from __future__ import annotations

import fnmatch
import json
import re

from recops import names
from tests.workflows.definitions import rendered

# action -> why "*" is the only resource the API accepts
STAR_ONLY = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray has no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray has no resource-level permissions",
    "ecr:GetAuthorizationToken": "a registry token is account-wide",
    "cloudwatch:PutMetricData": "no resource type; limited by the cloudwatch:namespace condition",
    # Step Functions' log delivery to CloudWatch Logs (the vended-logs API)
    "logs:CreateLogDelivery": "vended log delivery has no resource type",
    "logs:DeleteLogDelivery": "vended log delivery has no resource type",
    "logs:GetLogDelivery": "vended log delivery has no resource type",
    "logs:ListLogDeliveries": "vended log delivery has no resource type",
    "logs:UpdateLogDelivery": "vended log delivery has no resource type",
    "logs:PutResourcePolicy": "log delivery sets the account's logs resource policy",
    "logs:DescribeResourcePolicies": "account-wide listing",
    "logs:DescribeLogGroups": "account-wide listing",
    "servicequotas:ListAWSDefaultServiceQuotas": "lists a service's defaults; no resource type",
}
PERSONALIZE_LISTS = "personalize:List"  # List calls take no resource ARN


def policies(template: dict):
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                yield logical_id, statement


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_star_resources_only_for_actions_that_demand_them(demo_assembly):
    seen = 0
    for logical_id, statement in policies(demo_assembly.template):
        if "*" not in as_list(statement["Resource"]):
            continue
        seen += 1
        for action in as_list(statement["Action"]):
            assert action in STAR_ONLY or action.startswith(PERSONALIZE_LISTS), (
                f"{logical_id} grants {action} on '*'"
            )
            if action == "cloudwatch:PutMetricData":
                assert "cloudwatch:namespace" in str(statement.get("Condition")), logical_id
    assert seen >= 3


def test_every_pass_role_names_one_role_and_its_service(demo_assembly):
    found = 0
    for logical_id, statement in policies(demo_assembly.template):
        if "iam:PassRole" in as_list(statement["Action"]):
            found += 1
            assert len(as_list(statement["Resource"])) == 1, logical_id
            assert "*" not in str(statement["Resource"]), logical_id
            assert "iam:PassedToService" in statement["Condition"]["StringEquals"], logical_id
    assert found >= 2  # the Personalize steps (personalize) and the workflow (sagemaker)


def test_the_sagemaker_role_may_list_and_read_the_training_code_only(demo_assembly):
    """A processing job's S3Prefix input is listed, then read: both on the code asset's key."""
    statements = [
        s
        for logical_id, s in policies(demo_assembly.template)
        if logical_id.startswith("SageMakerExecutionRole")
        and "cdk-hnb659fds-assets" in json.dumps(s["Resource"])
    ]
    actions = sorted(a for s in statements for a in as_list(s["Action"]))
    assert actions == ["s3:GetObject", "s3:ListBucket"]
    [listing] = [s for s in statements if s["Action"] == "s3:ListBucket"]
    [prefix] = listing["Condition"]["StringLike"]["s3:prefix"]
    assert prefix.endswith(".zip")


SAGEMAKER_NAMED = re.compile(
    r":sagemaker:[^:]*:[^:]*:(processing-job|training-job|transform-job|model)/(.*)"
)


def _sagemaker_names(texts: list[str]) -> dict[str, list[str]]:
    """resource type -> the name patterns of the SageMaker job and model ARNs among texts."""
    found: dict[str, list[str]] = {}
    for text in texts:
        match = SAGEMAKER_NAMED.search(text)
        if match is not None:
            found.setdefault(match.group(1), []).append(match.group(2))
    return found


def test_sagemaker_names_granted_are_this_stacks_and_no_longer_prefixs(demo_assembly):
    """Every job or model a policy or the SageMaker trust (aws:SourceArn) names is
    `<prefix>--*`, which no name of a stack whose prefix starts with this one's
    (`recops-demo-eu--…`) matches."""
    owned = names.owned_prefix(demo_assembly.stack_name)
    longer = names.owned_prefix(f"{demo_assembly.stack_name}-eu")
    roles = [
        r for r in demo_assembly.template["Resources"].values() if r["Type"] == "AWS::IAM::Role"
    ]
    granted = _sagemaker_names(
        [
            rendered(r, "<...>")
            for _, statement in policies(demo_assembly.template)
            for r in as_list(statement["Resource"])
        ]
    )
    trusted = _sagemaker_names(
        [
            rendered(arn, "<...>")
            for role in roles
            for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            for arn in as_list(
                statement.get("Condition", {}).get("ArnLike", {}).get("aws:SourceArn")
            )
        ]
    )
    assert set(granted) == {"processing-job", "training-job", "transform-job", "model"}
    assert set(trusted) == {"processing-job", "training-job", "transform-job"}
    for kind, patterns in [*granted.items(), *trusted.items()]:
        for pattern in patterns:
            assert pattern == f"{owned}*", (kind, pattern)
            assert fnmatch.fnmatchcase(f"{owned}fm-0123456789ab", pattern)
            assert not fnmatch.fnmatchcase(f"{longer}fm-0123456789ab", pattern), (kind, pattern)
