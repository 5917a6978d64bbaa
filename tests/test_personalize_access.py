"""PersonalizeAccess built alone with two buckets in an empty stack."""

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from infra.grants import PrefixGrant
from infra.personalize_access import PersonalizeAccess
from tests.policy_checks import (
    assert_personalize_confused_deputy_guarded,
    resources_of,
    statements,
)


@pytest.fixture(scope="module")
def template():
    stack = Stack(App(), "T")
    data = s3.Bucket(stack, "Data")
    artifacts = s3.Bucket(stack, "Artifacts")
    PersonalizeAccess(
        stack,
        "Personalize",
        grants=[
            PrefixGrant(data, "personalize/import/"),
            PrefixGrant(artifacts, "personalize/batch-input/"),
            PrefixGrant(artifacts, "personalize/batch-output/", read=False, write=True),
        ],
    )
    return Template.from_stack(stack).to_json()


def _object_actions(policy_statements) -> dict[str, list[str]]:
    """Prefix -> actions for each object-level statement."""
    found = {}
    for statement in policy_statements:
        if statement["Action"] == "s3:ListBucket":
            continue
        prefix = statement["Resource"]["Fn::Join"][1][1]
        actions = statement["Action"]
        found[prefix] = sorted(actions if isinstance(actions, list) else [actions])
    return found


EXPECTED = {
    "/personalize/import/*": ["s3:GetObject"],
    "/personalize/batch-input/*": ["s3:GetObject"],
    "/personalize/batch-output/*": ["s3:AbortMultipartUpload", "s3:PutObject"],
}


def test_every_grant_to_personalize_is_confused_deputy_guarded(template):
    assert_personalize_confused_deputy_guarded(template)


def test_bucket_policies_read_imports_and_write_only_batch_output(template):
    granted = []
    for policy in resources_of(template, "AWS::S3::BucketPolicy").values():
        granted += [
            s
            for s in statements(policy["Properties"]["PolicyDocument"])
            if s.get("Principal") == {"Service": "personalize.amazonaws.com"}
        ]
    assert _object_actions(granted) == EXPECTED
    listings = [s for s in granted if s["Action"] == "s3:ListBucket"]
    assert sorted(tuple(s["Condition"]["StringLike"]["s3:prefix"]) for s in listings) == [
        ("personalize/batch-input/", "personalize/batch-input/*"),
        ("personalize/batch-output/", "personalize/batch-output/*"),
        ("personalize/import/", "personalize/import/*"),
    ]


def test_role_trusts_only_this_accounts_personalize(template):
    (role,) = resources_of(template, "AWS::IAM::Role").values()
    (trust,) = statements(role["Properties"]["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"Service": "personalize.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert set(trust["Condition"]) == {"StringEquals", "ArnLike"}
    assert "ManagedPolicyArns" not in role["Properties"]


def test_role_has_exactly_the_bucket_policy_rights(template):
    (policy,) = resources_of(template, "AWS::IAM::Policy").values()
    role_statements = statements(policy["Properties"]["PolicyDocument"])
    assert _object_actions(role_statements) == EXPECTED
    assert sum(s["Action"] == "s3:ListBucket" for s in role_statements) == 3
    assert len(role_statements) == 6
