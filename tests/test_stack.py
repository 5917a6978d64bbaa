"""The whole demo app as `cdk synth` produces it: nag, cfn-lint, outputs, portability."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from app import build_app
from recops.images import table
from tests.conftest import REPO
from tests.policy_checks import (
    assert_buckets_deny_insecure_transport,
    assert_no_wide_managed_policies,
    assert_personalize_confused_deputy_guarded,
)

ACKNOWLEDGED = "aws:cdk:acknowledged-rules"


def run_cfn_lint(*templates) -> subprocess.CompletedProcess:
    """cfn-lint with the repository's .cfnlintrc (W3005 ignored, nothing else)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, templates)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


def test_synth_has_no_unacknowledged_nag_findings(demo_assembly):
    # The fixture's synth would have raised ValidationFailed; the report lists no failure.
    report = json.loads((demo_assembly.outdir / "validation-report.json").read_text())
    assert report["pluginReports"] == []


def test_app_applies_nag_to_everything_in_it(demo_config, tmp_path):
    """The same build_app with one insecure bucket added fails synth: nag is really wired in.

    The same synth (one synth serves both) also gives the SageMaker role a new `Resource: "*"`
    grant: no acknowledgment anywhere in the stack may swallow it (the unscopable actions' "*"
    is acknowledged on their own policy only)."""
    app, stack = build_app(demo_config, outdir=str(tmp_path))
    s3.Bucket(stack, "Insecure", block_public_access=s3.BlockPublicAccess.BLOCK_ALL)
    stack.sagemaker.role.add_to_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"])
    )
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = report["pluginReports"]
    assert nag["pluginName"] == "AwsSolutions"
    rules = {v["ruleName"] for v in nag["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules
    wildcard = {
        construct["constructPath"]
        for v in nag["violations"]
        if v["ruleName"] == "AwsSolutions-IAM5[Resource::*]"
        for construct in v["violatingConstructs"]
    }
    assert wildcard == {f"{stack.stack_name}/SageMaker/ExecutionRole/DefaultPolicy/Resource"}


def test_every_acknowledgment_names_rule_resource_and_reason(demo_assembly):
    acknowledgments = [
        (path, rule, reason)
        for path, entries in demo_assembly.metadata.items()
        for entry in entries
        if entry["type"] == ACKNOWLEDGED
        for rule, reason in entry["data"].items()
    ]
    assert acknowledgments, "expected the IAM5 wildcard and S1 acknowledgments"
    for path, rule, reason in acknowledgments:
        rule_id = rule.removeprefix("Annotation::")
        assert rule_id.startswith("AwsSolutions-"), rule
        if rule_id.startswith("AwsSolutions-IAM5"):
            # one finding, one resource: never a blanket IAM5 acknowledgment
            assert rule_id.startswith("AwsSolutions-IAM5[Resource::"), rule
        assert path.count("/") >= 2, f"{rule} is acknowledged for a whole stack, not a resource"
        assert len(reason) >= 40, f"{path} {rule}: reason too thin: {reason!r}"


def test_cfn_lint_clean(demo_assembly):
    result = run_cfn_lint(*demo_assembly.outdir.glob("*.template.json"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_policies(demo_assembly):
    template = demo_assembly.template
    assert_buckets_deny_insecure_transport(template)
    assert_personalize_confused_deputy_guarded(template)
    assert_no_wide_managed_policies(template)


STACK_OUTPUTS = {
    "DataBucketName",
    "ArtifactsBucketName",
    "AccessLogsBucketName",
    "PersonalizeRoleArn",
    "SageMakerRoleArn",
    "PersonalizeStateMachineArn",
    "FmKnnStateMachineArn",
    "NotificationTopicArn",
}


def test_outputs_name_buckets_and_roles(demo_assembly):
    assert set(demo_assembly.template["Outputs"]) == STACK_OUTPUTS


def test_environment_agnostic(demo_assembly):
    """No account or region is baked in: the template deploys anywhere after bootstrap. The one
    place regions appear is the image table, as two lookups by the deploying region of every
    region: the image URIs (the jobs) and the registry accounts (the SageMaker role's pulls)."""
    template = dict(demo_assembly.template)
    mappings = template.pop("Mappings")
    uris = {name: m for name, m in mappings.items() if name.startswith("ImagesUris")}
    registries = {n: m for n, m in mappings.items() if n.startswith("SageMakerImageRegistries")}
    assert len(uris) == len(registries) == 1
    assert set(mappings) == set(uris) | set(registries)
    [images] = uris.values()
    assert len(images) > 20
    assert "us-east-1" in images
    assert "eu-west-1" in images
    for mapping in mappings.values():
        assert set(mapping) == set(table()["hosts"])
    text = json.dumps(template)
    manifest = json.loads((demo_assembly.outdir / "manifest.json").read_text())
    environment = manifest["artifacts"][demo_assembly.stack_name]["environment"]
    assert environment == "aws://unknown-account/unknown-region"
    assert "us-east-1" not in text
    assert "123456789012" not in text
    assert demo_assembly.stack_name == "recops-demo"


def test_a_customer_key_config_synthesizes_clean_with_exact_kms_rights(tmp_path):
    from recops.config import parse_config

    raw = json.loads((REPO / "config" / "movielens-demo.json").read_text())
    raw["kms_key_arn"] = (
        "arn:aws:kms:eu-west-1:111122223333:key/0f6c3c36-1111-2222-3333-444455556666"
    )
    app, stack = build_app(parse_config(raw), outdir=str(tmp_path))
    app.synth()  # raises on any unacknowledged nag finding
    template = json.loads((tmp_path / f"{stack.stack_name}.template.json").read_text())
    kms_actions = [
        statement["Action"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if "kms" in str(statement["Action"])
    ]
    assert kms_actions == [
        ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:ListGrants"],  # Personalize
        ["kms:Decrypt", "kms:GenerateDataKey"],  # SageMaker
        "kms:Decrypt",  # the run planner reads the data it checks
        ["kms:Decrypt", "kms:GenerateDataKey"],  # the FM → KNN workflow's S3 reads and writes
        ["kms:Decrypt", "kms:GenerateDataKey"],  # the Personalize workflow's S3 reads and writes
        "kms:Decrypt",  # the upload trigger reads the uploaded config
    ]


def test_lambdas_bundle_their_dependencies_instead_of_public_layers(demo_assembly):
    """Public layer ARNs (e.g. Powertools') exist in no emulator and tie the stack to a region's
    publisher account: dependencies are bundled into each function's own asset."""
    functions = [
        r
        for r in demo_assembly.template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    assert functions
    for function in functions:
        assert not function["Properties"].get("Layers"), function["Properties"].get("Layers")
        assert "S3Bucket" in function["Properties"]["Code"]  # a CDK asset, not inline code
