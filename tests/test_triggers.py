"""The upload trigger's construct (infra/triggers.py) on its own stack: it names both run machines
to the Lambda and may start, and list the executions of, each (and nothing else)."""

from __future__ import annotations

from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Template

from infra.triggers import UploadTrigger
from tests.policy_checks import resources_of, statements


def _template() -> tuple[dict, dict[str, str]]:
    # no bundling: the asset's content is not what this test is about (tests/test_lambda_asset.py)
    stack = Stack(App(context={"aws:cdk:bundling-stacks": []}), "recops-trigger")
    machines = {
        name: sfn.StateMachine(
            stack,
            name,
            definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, name + "Start")),
        )
        for name in ("Personalize", "FmKnn")
    }
    UploadTrigger(
        stack,
        "UploadTrigger",
        data=s3.Bucket(stack, "Data"),
        personalize_machine=machines["Personalize"],
        fm_knn_machine=machines["FmKnn"],
        stack_prefix="recops-trigger",
    )
    template = Template.from_stack(stack).to_json()
    ids = {
        name: next(
            logical
            for logical, resource in resources_of(
                template, "AWS::StepFunctions::StateMachine"
            ).items()
            if logical.startswith(name)
        )
        for name in machines
    }
    return template, ids


def test_the_trigger_names_both_machines_and_may_start_each():
    template, ids = _template()
    (function,) = [
        f
        for f in resources_of(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "runs.trigger.handler"
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["PERSONALIZE_STATE_MACHINE_ARN"] == {"Ref": ids["Personalize"]}
    assert variables["FM_KNN_STATE_MACHINE_ARN"] == {"Ref": ids["FmKnn"]}
    assert "STATE_MACHINE_ARN" not in variables
    granted = [
        statement
        for policy in resources_of(template, "AWS::IAM::Policy").values()
        for statement in statements(policy["Properties"]["PolicyDocument"])
        if any(str(action).startswith("states:") for action in _list(statement["Action"]))
    ]
    assert granted == [
        {
            "Action": ["states:StartExecution", "states:ListExecutions"],
            "Effect": "Allow",
            "Resource": [{"Ref": ids["Personalize"]}, {"Ref": ids["FmKnn"]}],
        }
    ]


def _list(value: object) -> list:
    return value if isinstance(value, list) else [value]
