"""The Storage construct, built alone in an empty stack."""

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from infra.storage import Storage
from tests.policy_checks import assert_buckets_deny_insecure_transport, resources_of

KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/0f6c3c36-1111-2222-3333-444455556666"


def _template(retain_data=False, with_key=False) -> dict:
    stack = Stack(App(context={"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True}), "T")
    key = kms.Key.from_key_arn(stack, "Key", KEY_ARN) if with_key else None
    Storage(stack, "Storage", retain_data=retain_data, kms_key=key)
    return Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def template():
    return _template()


def test_three_private_encrypted_buckets(template):
    buckets = resources_of(template, "AWS::S3::Bucket")
    assert len(buckets) == 3
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", name


def test_tls_enforced_on_every_bucket(template):
    assert_buckets_deny_insecure_transport(template)


def test_data_bucket_versioned_and_both_log_to_access_bucket(template):
    buckets = resources_of(template, "AWS::S3::Bucket")
    logged = {k: v for k, v in buckets.items() if "LoggingConfiguration" in v["Properties"]}
    assert sorted(k[:15] for k in logged) == ["StorageArtifact", "StorageData6BB2"]
    log_bucket = next(k for k in buckets if k.startswith("StorageAccessLogs"))
    for bucket in logged.values():
        assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
            "Ref": log_bucket
        }
    data = next(v for k, v in buckets.items() if k.startswith("StorageData"))
    assert data["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_tmp_prefix_expires(template):
    Template.from_json(template).has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {"Prefix": "tmp/", "ExpirationInDays": 7, "Status": "Enabled"}
                        )
                    ]
                )
            }
        },
    )


def test_destroy_empties_buckets_by_default(template):
    for bucket in resources_of(template, "AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    (emptier,) = resources_of(template, "Custom::EmptyBuckets").values()
    names = emptier["Properties"]["BucketNames"]
    assert len(names) == 3
    function = next(iter(resources_of(template, "AWS::Lambda::Function").values()))
    assert function["Properties"]["Runtime"].startswith("python3.")


def test_retain_data_keeps_buckets_and_skips_emptier():
    template = _template(retain_data=True)
    for bucket in resources_of(template, "AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Retain"
    assert not resources_of(template, "Custom::EmptyBuckets")


def test_customer_key_encrypts_data_and_artifacts():
    template = _template(with_key=True)
    kms_buckets = [
        b
        for b in resources_of(template, "AWS::S3::Bucket").values()
        if b["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        == "aws:kms"
    ]
    assert len(kms_buckets) == 2  # the access-log bucket must stay SSE-S3
    for bucket in kms_buckets:
        rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == KEY_ARN
