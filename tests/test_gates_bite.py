"""Each quality gate fails on the mistake it exists for."""

import json

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.nag import acknowledge
from tests.policy_checks import (
    assert_buckets_deny_insecure_transport,
    assert_personalize_confused_deputy_guarded,
)
from tests.test_stack import run_cfn_lint


def _bucket_without_tls(stack: Stack) -> s3.Bucket:
    return s3.Bucket(
        stack,
        "Plain",
        enforce_ssl=False,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
    )


def test_nag_fails_synth_on_bucket_without_tls(tmp_path):
    app = App(outdir=str(tmp_path))
    _bucket_without_tls(Stack(app, "Bad"))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for v in report["pluginReports"][0]["violations"]}
    assert "AwsSolutions-S10" in rules


def test_template_check_fails_on_bucket_without_tls():
    stack = Stack(App(), "Bad")
    _bucket_without_tls(stack)
    with pytest.raises(AssertionError, match="without a TLS-only policy"):
        assert_buckets_deny_insecure_transport(Template.from_stack(stack).to_json())


def test_template_check_fails_on_personalize_grant_without_conditions():
    stack = Stack(App(), "Bad")
    bucket = s3.Bucket(stack, "Data", enforce_ssl=True)
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal("personalize.amazonaws.com")],
            actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects("*")],
        )
    )
    with pytest.raises(AssertionError, match="no aws:SourceAccount"):
        assert_personalize_confused_deputy_guarded(Template.from_stack(stack).to_json())


def test_cfn_lint_reports_a_broken_template(tmp_path):
    broken = tmp_path / "broken.template.json"
    broken.write_text(
        json.dumps(
            {"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"Versioned": True}}}}
        )
    )
    result = run_cfn_lint(broken)
    assert result.returncode != 0
    assert "E3002" in result.stdout  # additional property not allowed


def test_an_acknowledgment_without_a_reason_is_refused():
    stack = Stack(App(), "Bad")
    with pytest.raises(ValueError, match="needs a concrete reason"):
        acknowledge(_bucket_without_tls(stack), "AwsSolutions-S10", "ok")
