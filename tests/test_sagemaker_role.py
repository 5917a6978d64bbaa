"""SageMakerRole built alone in an empty stack."""

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from infra.grants import PrefixGrant
from infra.sagemaker_role import SageMakerRole
from recops import names
from tests.policy_checks import assert_no_wide_managed_policies, resources_of, statements


@pytest.fixture(scope="module")
def template():
    stack = Stack(App(), "T")
    data = s3.Bucket(stack, "Data")
    SageMakerRole(
        stack,
        "SageMaker",
        job_name_prefix=names.owned_prefix("demo"),
        grants=[PrefixGrant(data, "raw/"), PrefixGrant(data, "prepared/", write=True)],
    )
    return Template.from_stack(stack).to_json()


def _policy(template) -> list[dict]:
    (policy,) = resources_of(template, "AWS::IAM::Policy").values()
    return statements(policy["Properties"]["PolicyDocument"])


def test_no_managed_policies(template):
    assert_no_wide_managed_policies(template)
    (role,) = resources_of(template, "AWS::IAM::Role").values()
    assert "ManagedPolicyArns" not in role["Properties"]
    (trust,) = statements(role["Properties"]["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_s3_only_on_its_prefixes(template):
    s3_statements = [s for s in _policy(template) if str(s["Action"]).count("s3:")]
    objects = {
        s["Resource"]["Fn::Join"][1][1]: s["Action"]
        for s in s3_statements
        if s["Action"] != "s3:ListBucket"
    }
    assert objects == {
        "/raw/*": "s3:GetObject",
        "/prepared/*": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
    }
    for statement in s3_statements:
        resource = statement["Resource"]
        assert resource != "*"
        assert "Fn::GetAtt" in str(resource)


def test_logs_only_for_its_own_jobs(template):
    """Only the stack's own job names: `demo--*`, which no job of stack `demo-eu` matches."""
    streams = next(s for s in _policy(template) if "logs:PutLogEvents" in s["Action"])
    for resource in streams["Resource"]:
        assert str(resource).endswith(":log-stream:demo--*']]}"), resource


def test_star_resources_only_where_aws_allows_no_scoping(template):
    star = [s for s in _policy(template) if s["Resource"] == "*"]
    assert sorted(str(s["Action"]) for s in star) == [
        "cloudwatch:PutMetricData",
        "ecr:GetAuthorizationToken",
    ]
