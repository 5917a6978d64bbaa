"""The customer-key statements: what Personalize's KMS page lists, the same in the README, the
key policy and the role the stack synthesizes."""

import json

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from infra.grants import PrefixGrant
from infra.personalize_access import PersonalizeAccess
from recops import kms_policy
from tests.conftest import REPO
from tests.policy_checks import resources_of, statements

KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
# https://docs.aws.amazon.com/personalize/latest/dg/granting-personalize-key-access.html:
# "Your AWS KMS key policy and IAM policies must grant permissions for the following actions:
# Decrypt, GenerateDataKey, DescribeKey, CreateGrant (only required in key policy), ListGrants"
DOCUMENTED = {
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:ListGrants",
}


@pytest.fixture(scope="module")
def role_kms_statements():
    stack = Stack(App(), "T")
    data = s3.Bucket(stack, "Data")
    key = kms.Key.from_key_arn(stack, "Key", KEY_ARN)
    PersonalizeAccess(
        stack, "Personalize", grants=[PrefixGrant(data, "personalize/import/")], kms_key=key
    )
    template = Template.from_stack(stack).to_json()
    (policy,) = resources_of(template, "AWS::IAM::Policy").values()
    return [
        s
        for s in statements(policy["Properties"]["PolicyDocument"])
        if "kms:" in json.dumps(s["Action"])
    ]


def _by_sid(rendered: list[dict]) -> dict[str, dict]:
    return {statement["Sid"]: statement for statement in rendered}


def test_the_readme_shows_the_rendered_key_policy_statements():
    readme = (REPO / "README.md").read_text()
    assert f"```json\n{kms_policy.render(**kms_policy.EXAMPLE)}\n```" in readme


def test_the_key_policy_grants_personalize_and_its_role_the_documented_actions():
    rendered = _by_sid(kms_policy.key_policy_statements(**kms_policy.EXAMPLE))
    service, role = rendered["PersonalizeServiceUsesTheKey"], rendered["PersonalizeRoleUsesTheKey"]
    assert set(service["Action"]) == set(role["Action"]) == DOCUMENTED
    assert service["Principal"] == {"Service": "personalize.amazonaws.com"}
    assert service["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "111122223333"},
        "ArnLike": {"aws:SourceArn": "arn:aws:personalize:us-east-1:111122223333:*"},
    }
    assert role["Principal"] == {"AWS": kms_policy.EXAMPLE["personalize_role_arn"]}
    # Personalize calls KMS itself: a kms:ViaService condition would refuse those requests.
    assert "kms:ViaService" not in json.dumps([service, role])


def test_the_sagemaker_role_may_use_the_key_only_through_s3():
    sagemaker = _by_sid(kms_policy.key_policy_statements(**kms_policy.EXAMPLE))[
        "SageMakerRoleUsesTheKeyThroughS3"
    ]
    assert sagemaker["Principal"] == {"AWS": kms_policy.EXAMPLE["sagemaker_role_arn"]}
    assert sagemaker["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert sagemaker["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    }


def test_without_a_sagemaker_role_only_personalize_statements_are_rendered():
    example = {**kms_policy.EXAMPLE, "sagemaker_role_arn": None}
    assert [s["Sid"] for s in kms_policy.key_policy_statements(**example)] == [
        "PersonalizeServiceUsesTheKey",
        "PersonalizeRoleUsesTheKey",
    ]


def test_the_statements_are_a_valid_key_policy():
    document = iam.PolicyDocument.from_json(
        {
            "Version": "2012-10-17",
            "Statement": kms_policy.key_policy_statements(**kms_policy.EXAMPLE),
        }
    )
    assert document.validate_for_resource_policy() == []


def test_the_synthesized_role_gets_the_key_policy_actions_less_create_grant(role_kms_statements):
    (statement,) = role_kms_statements
    role_in_key_policy = _by_sid(kms_policy.key_policy_statements(**kms_policy.EXAMPLE))[
        "PersonalizeRoleUsesTheKey"
    ]
    assert set(statement["Action"]) == set(role_in_key_policy["Action"]) - {"kms:CreateGrant"}
    assert set(statement["Action"]) == DOCUMENTED - {"kms:CreateGrant"}
    assert statement["Resource"] == KEY_ARN
    assert "Condition" not in statement


def test_python_m_recops_kms_policy_prints_the_rendering(capsys):
    example = kms_policy.EXAMPLE
    kms_policy.main(
        [
            "--account",
            example["account"],
            "--region",
            example["region"],
            "--personalize-role-arn",
            example["personalize_role_arn"],
            "--sagemaker-role-arn",
            example["sagemaker_role_arn"],
        ]
    )
    assert capsys.readouterr().out == kms_policy.render(**example) + "\n"
