"""What CDK synthesizes for S3 -> EventBridge -> Step Functions runs on the local account."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn

from localaws import LocalAccount
from tests.localaws.test_events_delivery import execution_input, executions


def _synth(outdir: str) -> None:
    app = cdk.App(outdir=outdir)
    stack = cdk.Stack(app, "UploadsToRuns")
    bucket = s3.Bucket(stack, "Uploads", event_bridge_enabled=True)
    machine = sfn.StateMachine(
        stack, "Run", definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, "Go"))
    )
    rule = events.Rule(
        stack,
        "OnConfig",
        event_pattern=events.EventPattern(
            source=["aws.s3"],
            detail_type=["Object Created"],
            detail={"bucket": {"name": [bucket.bucket_name]}},
        ),
    )
    rule.add_target(targets.SfnStateMachine(machine))
    cdk.CfnOutput(stack, "Bucket", value=bucket.bucket_name)
    cdk.CfnOutput(stack, "Machine", value=machine.state_machine_arn)
    app.synth()


def test_an_upload_to_a_cdk_event_bridge_bucket_starts_the_machine(tmp_path):
    _synth(str(tmp_path))
    with LocalAccount() as account:
        outputs = account.deploy(tmp_path, "UploadsToRuns")
        s3_client = account.client("s3")
        configuration = s3_client.get_bucket_notification_configuration(Bucket=outputs["Bucket"])
        assert "EventBridgeConfiguration" in configuration  # set by CDK's notifications handler
        s3_client.put_object(Bucket=outputs["Bucket"], Key="runs/1.json", Body=b"{}")
        (execution,) = executions(account, outputs["Machine"])
        assert execution_input(account, execution)["detail"]["object"]["key"] == "runs/1.json"
        assert json.dumps(execution_input(account, execution)).count("runs/1.json") == 1
