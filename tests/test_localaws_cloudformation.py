"""The foundation stack in the local account: deploy, custom resources, destroy as in AWS."""

import inspect
import json
import time

import pytest
from moto.cloudformation import parsing
from moto.cloudformation.custom_model import CustomModel
from moto.s3.models import S3Backend

from localaws import LocalAccount
from localaws.cloudformation import CUSTOM_RESOURCE_TYPE, deletion_order
from localaws.deploy import failure_reasons, wait_for_stack


def test_the_pinned_moto_still_has_the_gaps():
    create = inspect.getsource(CustomModel.create_from_cloudformation_json)
    assert "threading.Thread" in create  # asynchronous Create only
    assert 'f"{host}/cloudformation_' in create  # a ResponseURL without a scheme
    assert '"Delete"' not in inspect.getsource(CustomModel)  # never a Delete event
    assert "return None" in inspect.getsource(S3Backend.delete_bucket)  # non-empty: silent
    assert CUSTOM_RESOURCE_TYPE not in parsing.get_model_map()  # CDK's default type: skipped


def test_the_pinned_moto_still_runs_stack_operations_inline():
    from moto.cloudformation.models import CloudFormationBackend, Stack

    # Create, update and delete run inside the API call: never seen *_IN_PROGRESS.
    assert "new_stack.create_resources()" in inspect.getsource(CloudFormationBackend.create_stack)
    assert "stack.delete()" in inspect.getsource(CloudFormationBackend.delete_stack)
    assert "self.resource_map.update(" in inspect.getsource(Stack.update)
    update = inspect.getsource(parsing.ResourceMap.update)  # removes first, then adds
    assert update.index('resource_names_by_action["Remove"]') < update.index(
        'resource_names_by_action["Add"]'
    )
    assert "rollback" in inspect.getsource(CloudFormationBackend.execute_change_set).lower()


def test_deploy_outputs_and_destroy_empties_versioned_buckets(demo_assembly):
    with LocalAccount() as account:
        outputs = account.deploy(demo_assembly.outdir, demo_assembly.stack_name)
        assert set(outputs) >= {"DataBucketName", "ArtifactsBucketName", "PersonalizeRoleArn"}
        s3 = account.client("s3")
        for body in (b"v1", b"v2"):  # two versions in the versioned data bucket
            s3.put_object(Bucket=outputs["DataBucketName"], Key="raw/ratings.csv", Body=body)
        s3.put_object(Bucket=outputs["ArtifactsBucketName"], Key="reports/r.html", Body=b"x")
        assert account.destroy(demo_assembly.stack_name) == "DELETE_COMPLETE"
        names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert outputs["DataBucketName"] not in names
        assert outputs["ArtifactsBucketName"] not in names
        assert account.client("iam").list_roles()["Roles"] == []


def _template_with_one_bucket() -> str:
    return json.dumps({"Resources": {"Plain": {"Type": "AWS::S3::Bucket"}}})


def test_non_empty_bucket_fails_the_delete_as_in_aws():
    with LocalAccount() as account:
        cloudformation = account.client("cloudformation")
        cloudformation.create_stack(StackName="plain", TemplateBody=_template_with_one_bucket())
        assert wait_for_stack(cloudformation, "plain")["StackStatus"] == "CREATE_COMPLETE"
        bucket = cloudformation.describe_stack_resources(StackName="plain")["StackResources"][0]
        account.client("s3").put_object(Bucket=bucket["PhysicalResourceId"], Key="k", Body=b"x")
        assert account.destroy("plain") == "DELETE_FAILED"
        events = cloudformation.describe_stack_events(StackName="plain")["StackEvents"]
        assert any("BucketNotEmpty" in (e.get("ResourceStatusReason") or "") for e in events)
        account.client("s3").delete_object(Bucket=bucket["PhysicalResourceId"], Key="k")
        assert account.destroy("plain") == "DELETE_COMPLETE"


def test_deletion_order_puts_dependents_first():
    resources = {
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Role": {"Type": "AWS::IAM::Role"},
        "Fn": {"Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
        "Custom": {
            "Properties": {"ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]}, "B": {"Ref": "Bucket"}}
        },
        "Sub": {"Properties": {"X": {"Fn::Sub": "${Custom.Arn}-x"}}},
    }
    order = deletion_order(resources)
    assert order.index("Sub") < order.index("Custom") < order.index("Fn") < order.index("Role")
    assert order.index("Custom") < order.index("Bucket")


@pytest.mark.parametrize("status", ["FAILED", None])
def test_a_failing_custom_resource_fails_the_stack(status, tmp_path):
    import io
    import zipfile

    answer = (
        "import json, urllib.request\n"
        "def handler(event, context):\n"
        f"    status = {status!r}\n"
        "    if status is None:\n"
        "        raise RuntimeError('crashed before answering')\n"
        "    body = json.dumps({'Status': status, 'Reason': 'bad input',\n"
        "        'PhysicalResourceId': 'p',\n"
        "        'StackId': event['StackId'], 'RequestId': event['RequestId'],\n"
        "        'LogicalResourceId': event['LogicalResourceId']}).encode()\n"
        "    request = urllib.request.Request(event['ResponseURL'], data=body, method='PUT')\n"
        "    urllib.request.urlopen(request)\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", answer)
    with LocalAccount() as account:
        role = account.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")[
            "Role"
        ]["Arn"]
        fn = account.client("lambda").create_function(
            FunctionName="cr",
            Runtime="python3.14",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": buffer.getvalue()},
        )["FunctionArn"]
        template = {
            "Resources": {"C": {"Type": "Custom::Thing", "Properties": {"ServiceToken": fn}}}
        }
        cloudformation = account.client("cloudformation")
        stack_id = cloudformation.create_stack(StackName="s", TemplateBody=json.dumps(template))[
            "StackId"
        ]
        # As in AWS: the call returns and the stack rolls back, sending Delete, which this
        # handler fails too. A crash before answering is seen only in the function's logs;
        # CloudFormation waits for the ServiceTimeout (virtual seconds here).
        assert wait_for_stack(cloudformation, stack_id)["StackStatus"] == "ROLLBACK_FAILED"
        create, delete = failure_reasons(cloudformation, stack_id)
        expected = "Message returned: bad input" if status else "did not receive a response"
        assert create.startswith("C CREATE_FAILED: ")
        assert expected in create
        assert delete.startswith("C DELETE_FAILED: ")


def test_the_pinned_moto_still_has_the_change_set_gaps():
    from moto.cloudformation.models import CloudFormationBackend
    from moto.stepfunctions.models import StateMachine

    assert "output_map" not in inspect.getsource(CloudFormationBackend.execute_change_set)
    assert (
        "stack_name" not in inspect.signature(CloudFormationBackend.describe_change_set).parameters
    )
    assert "instance.parameters[parameter" in inspect.getsource(
        CloudFormationBackend._resolve_update_parameters
    )
    assert "stepfunctions_backends[" in inspect.getsource(
        StateMachine.create_from_cloudformation_json
    )


def test_state_machines_from_a_stack_execute():
    definition = json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": True}, "End": True}}}
    )
    template = {
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": definition,
                    "RoleArn": "arn:aws:iam::123456789012:role/x",
                },
            }
        },
        "Outputs": {"MachineArn": {"Value": {"Ref": "Machine"}}},
    }
    with LocalAccount() as account:
        cloudformation = account.client("cloudformation")
        cloudformation.create_stack(StackName="sm", TemplateBody=json.dumps(template))
        stack = wait_for_stack(cloudformation, "sm")
        arn = stack["Outputs"][0]["OutputValue"]
        sfn = account.client("stepfunctions")
        assert [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]] == [arn]
        execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
        for _ in range(50):
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.1)
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["output"]) == {"ok": True}
        assert account.destroy("sm") == "DELETE_COMPLETE"
        assert sfn.list_state_machines()["stateMachines"] == []
