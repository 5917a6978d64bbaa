"""State machines really execute: JSONata, aws-sdk camelCase services, SageMaker .sync jobs."""

import inspect
import json
import time

import pytest
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.api import InvalidDefinition
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
    ErrorEqualsDecl,
)
from moto.stepfunctions.parser.asl.component.common.retry.retrier_decl import RetrierDecl
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.component.intrinsic import jsonata as intrinsic_jsonata
from moto.stepfunctions.parser.asl.component.state.choice.state_choice import StateChoice
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service,
    state_task_service_callback,
    state_task_service_factory,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as aws_sdk_module,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from localaws import LocalAccount

ROLE = "arn:aws:iam::123456789012:role/states"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"


def run(account, definition: dict, payload: dict | None = None, timeout: float = 60) -> dict:
    sfn = account.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload or {}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise TimeoutError(f"execution still running after {timeout}s")


def test_the_pinned_moto_still_has_the_gaps():
    assert moto_jsonata._eval_jsonata is None
    assert "sagemaker" in state_task_service_factory._UNSUPPORTED_SERVICE_NAMES
    source = inspect.getsource(state_task_service.StateTaskService._normalise_parameters)
    assert source.rstrip().endswith("pass")
    assert "exec_name = name" in inspect.getsource(StepFunctionsParserBackend.start_execution)


def test_the_pinned_moto_still_has_the_error_gaps():
    """Each gap stepfunctions_errors.py closes, as it is in moto 5.2.5."""
    aws_sdk = inspect.getsource(aws_sdk_module.StateTaskServiceAwsSdk._from_error)
    assert "['ResponseMetadata']['RequestId']" in aws_sdk  # KeyError without a request id
    assert "personalize" not in aws_sdk_module._SERVICE_ERROR_NAMES  # lower-case prefixes
    assert "res = True" in inspect.getsource(ErrorEqualsDecl._eval_body)  # ALL catches Runtime
    assert "No branching option" in inspect.getsource(StateChoice._eval_state)
    assert isinstance(Preprocessor.__dict__["_query_language_per_scope"], list)  # shared scope
    assert "not supported" in intrinsic_jsonata._DECLARATION_UUID
    assert "not supported" in intrinsic_jsonata._DECLARATION_HASH
    assert "JSONataException" not in inspect.getsource(string_expression)
    assert issubclass(HeartbeatTimeoutError, TimeoutError)  # named States.Timeout
    assert "StatesHeartbeatTimeout" not in inspect.getsource(StateTask)
    assert InvalidDefinition.TYPE is None  # empty error code


def test_the_pinned_moto_still_has_the_execution_and_time_gaps():
    """Each gap stepfunctions_{shapes,nested,executions,time}.py closes, as it is in moto 5.2.5."""
    assert "_normalise_response" not in StateTaskServiceSfn.__dict__  # startExecution unmapped
    blob = inspect.getsource(state_task_service.StateTaskService._to_boto_request_value)
    assert "to_json_str(request_value" in blob  # a string Body JSON-encoded
    assert "maxResults" not in inspect.getsource(StepFunctionResponse.get_execution_history)
    start = inspect.getsource(StepFunctionsParserBackend.start_execution)
    assert "cloud_watch_logging_session=None" in start  # no execution log
    cfn = inspect.getsource(StateMachine.create_from_cloudformation_json)
    assert "LoggingConfiguration" not in cfn
    assert "datetime.datetime.now()" in inspect.getsource(Timestamp._get_wait_seconds)  # local
    assert "program_state_event.wait" in inspect.getsource(WaitFunction._wait_interval)
    assert "time.sleep(interval_seconds)" in inspect.getsource(RetrierDecl._eval_body)
    timeout = inspect.getsource(ExecutionState._evaluate_with_timeout)
    assert "terminated_event.wait(timeout_seconds)" in timeout
    assert state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK == 0.5
    assert "datetime.datetime.now(" in inspect.getsource(EventManager._get_current_timestamp)


def test_jsonata_states():
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Add",
        "States": {
            "Add": {
                "Type": "Pass",
                "Output": {
                    "total": "{% $sum($states.input.values) %}",
                    "n": "{% $count($states.input.values) %}",
                },
                "End": True,
            }
        },
    }
    with LocalAccount() as account:
        result = run(account, definition, {"values": [1, 2, 3.5]})
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == {"total": 6.5, "n": 3}


def test_aws_sdk_personalize_camel_case_and_datetimes():
    from tests.test_localaws_personalize import SCHEMA

    definition = {
        "StartAt": "Create",
        "States": {
            "Create": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:personalize:createSchema",
                "Parameters": {"Name": "demo-schema", "Schema.$": "$.schema"},
                "Next": "Describe",
            },
            "Describe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:personalize:describeSchema",
                "Parameters": {"SchemaArn.$": "$.SchemaArn"},
                "End": True,
            },
        },
    }
    with LocalAccount() as account:
        result = run(account, definition, {"schema": SCHEMA})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert output["Schema"]["Name"] == "demo-schema"  # PascalCase, as Step Functions returns
    assert output["Schema"]["SchemaArn"].startswith("arn:aws:personalize:")
    assert isinstance(output["Schema"]["CreationDateTime"], str)


def test_unnamed_executions_do_not_collide():
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    with LocalAccount() as account:
        sfn = account.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="m", definition=json.dumps(definition), roleArn=ROLE
        )
        arns = {
            sfn.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
            for _ in range(2)
        }
    assert len(arns) == 2
    assert not any(arn.endswith(":None") for arn in arns)


JOB_SCRIPT = """
import pathlib, sys
source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
text = (source / "numbers.txt").read_text()
if "fail" in text:
    print("cannot sum: not a number")
    sys.exit(3)
(target / "sum.txt").write_text(str(sum(int(x) for x in text.split())))
"""


def _processing_state(bucket: str) -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync",
        "Parameters": {
            "ProcessingJobName.$": "$.name",
            "RoleArn": ROLE,
            "AppSpecification": {
                "ImageUri": SKLEARN,
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/job.py"],
                "ContainerArguments": [
                    "/opt/ml/processing/input/data",
                    "/opt/ml/processing/output",
                ],
            },
            "ProcessingInputs": [
                {
                    "InputName": "code",
                    "S3Input": {
                        "S3Uri": f"s3://{bucket}/code/",
                        "LocalPath": "/opt/ml/processing/input/code",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                },
                {
                    "InputName": "data",
                    "S3Input": {
                        "S3Uri": f"s3://{bucket}/data/",
                        "LocalPath": "/opt/ml/processing/input/data",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                },
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "result",
                        "S3Output": {
                            "S3Uri": f"s3://{bucket}/out",
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "VolumeSizeInGB": 5,
                }
            },
        },
        "End": True,
    }


@pytest.mark.parametrize("numbers", ["1 2 3", "1 fail"])
def test_sagemaker_processing_job_sync(numbers):
    with LocalAccount() as account:
        s3 = account.client("s3")
        s3.create_bucket(Bucket="work")
        s3.put_object(Bucket="work", Key="code/job.py", Body=JOB_SCRIPT.encode())
        s3.put_object(Bucket="work", Key="data/numbers.txt", Body=numbers.encode())
        definition = {"StartAt": "Job", "States": {"Job": _processing_state("work")}}
        result = run(account, definition, {"name": "sum-job"})
        if "fail" in numbers:
            assert result["status"] == "FAILED"
            # a failed .sync job: States.TaskFailed, the final Describe*Job as the cause
            assert result["error"] == "States.TaskFailed"
            cause = json.loads(result["cause"])
            assert cause["ProcessingJobStatus"] == "Failed"
            assert "cannot sum: not a number" in cause["FailureReason"]
            described = account.client("sagemaker").describe_processing_job(
                ProcessingJobName="sum-job"
            )
            assert described["ProcessingJobStatus"] == "Failed"
        else:
            assert result["status"] == "SUCCEEDED", result.get("cause")
            assert json.loads(result["output"])["ProcessingJobStatus"] == "Completed"
            assert s3.get_object(Bucket="work", Key="out/sum.txt")["Body"].read() == b"6"
