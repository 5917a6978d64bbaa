"""Step Functions execution gaps in moto's ASL interpreter (moto 5.2.5), closed.

- JSONata: the evaluator is left unset (LocalStack's used a JVM); here jsonata-python.
- `aws-sdk:*` tasks: request parameters are not mapped to the botocore shape, so services with
  camelCase members (personalize, states) fail with KeyError; responses are not turned into the
  PascalCase Step Functions returns. Both are done here from botocore's service model, and
  datetimes become ISO-8601 strings (moto's describe_execution cannot serialise them).
- `startExecution` without a name produced an ARN ending in `:None` (the second run collided);
  here a UUID is the name, as in AWS.
- State machines created by CloudFormation went to the backend that does not execute, so the
  Step Functions API (in execute mode) could not see them; here they go to the executing one.
- `arn:aws:states:::sagemaker:create{Processing,Training,Transform}Job(.sync)`: rejected as an
  unsupported integration. Here the job is created and, with `.sync`, polled until it ends:
  Completed returns the Describe*Job response; Failed or Stopped fail the task with
  `States.TaskFailed` and the Describe*Job response, as JSON, for cause. That is how Step Functions
  ends every "Run a Job (.sync)" task whose job fails (Batch, Glue, ECS, nested executions: moto's
  ports of LocalStack's AWS-recorded integrations do the same); the pages
  https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-sync and
  https://docs.aws.amazon.com/step-functions/latest/dg/connect-sagemaker.html describe the pattern
  and do not spell the error out. API errors of the call itself are `SageMaker.<Code>Exception`
  or `SageMaker.AmazonSageMakerException` (stepfunctions_errors.py).

Error naming, JSONata errors and the parser's scope leak: stepfunctions_errors.py.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import uuid
from typing import Any

import botocore.session
import jsonata
from botocore.exceptions import ClientError
from moto.stepfunctions import models as sfn_models
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

from localaws import stepfunctions_errors
from localaws.patching import patched
from localaws.stepfunctions_errors import boto_service_name, sagemaker_error, task_failure

_MODELS = botocore.session.get_session()


def _operation(service: str, action: str):
    """The botocore operation model for an SFN-style service and action name."""
    model = _MODELS.get_service_model(boto_service_name(service))
    wanted = action.replace("_", "").lower()
    for name in model.operation_names:
        if name.lower() == wanted:
            return model.operation_model(name)
    raise ValueError(f"{service} has no operation {action!r}")


def jsonable(value: Any) -> Any:
    """Datetimes as ISO-8601 strings, recursively; everything else unchanged."""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


# --- JSONata -----------------------------------------------------------------------------------


def _eval_jsonata(expression: str) -> Any:
    try:
        compiled = jsonata.Jsonata(expression)
        for name, function in stepfunctions_errors.JSONATA_FUNCTIONS.items():
            compiled.register_lambda(name, function)
        return compiled.evaluate(None)
    except Exception as err:  # surfaced as States.QueryEvaluationError by moto
        raise moto_jsonata.JSONataException("UNKNOWN", str(err)) from err


# --- aws-sdk normalisation ---------------------------------------------------------------------


def _normalise_parameters(self, parameters: dict, boto_service_name=None, service_action_name=None):
    operation = _operation(self.resource.api_name, service_action_name or self.resource.api_action)
    if operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def _normalise_response(self, response, boto_service_name=None, service_action_name=None):
    operation = _operation(self.resource.api_name, service_action_name or self.resource.api_action)
    if operation.output_shape is not None and isinstance(response, dict):
        self._from_boto_response(response, operation.output_shape)
        converted = jsonable(response)
        response.clear()
        response.update(converted)


# --- unnamed executions ------------------------------------------------------------------------

_original_start_execution = parser_models.StepFunctionsParserBackend.start_execution


def _start_execution(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
    return _original_start_execution(
        self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
    )


# --- SageMaker jobs ----------------------------------------------------------------------------

_JOBS = {
    "createprocessingjob": ("ProcessingJobName", "describe_processing_job", "ProcessingJobStatus"),
    "createtrainingjob": ("TrainingJobName", "describe_training_job", "TrainingJobStatus"),
    "createtransformjob": ("TransformJobName", "describe_transform_job", "TransformJobStatus"),
}


class StateTaskServiceSageMaker(StateTaskServiceCallback):
    """The optimised SageMaker integration: request-response, and .sync for the three jobs."""

    def __init__(self) -> None:
        super().__init__(
            supported_integration_patterns={
                ResourceCondition.WaitForTaskToken,
                ResourceCondition.Sync,
            }
        )

    def _from_error(self, env, ex: Exception):
        if isinstance(ex, ClientError):
            return task_failure(self, env, *sagemaker_error(ex))
        return super()._from_error(env, ex)

    def _get_supported_parameters(self) -> set[str] | None:
        operation = _operation("sagemaker", self.resource.api_action)
        return set(operation.input_shape.members) if operation.input_shape else set()

    def _eval_service_task(
        self, env, resource_runtime_part, normalised_parameters, state_credentials
    ):
        client = boto_client_for(
            region=resource_runtime_part.region,
            service="sagemaker",
            state_credentials=state_credentials,
        )
        action = self._get_boto_service_action()
        response = getattr(client, action)(**normalised_parameters) or {}
        response.pop("ResponseMetadata", None)
        env.stack.append(jsonable(response))

    def _build_sync_resolver(
        self, env, resource_runtime_part, normalised_parameters, state_credentials
    ):
        job = _JOBS.get(self.resource.api_action.lower())
        if job is None:
            raise ValueError(f"sagemaker:{self.resource.api_action} has no .sync pattern")
        name_key, describe, status_key = job
        client = boto_client_for(
            region=resource_runtime_part.region,
            service="sagemaker",
            state_credentials=state_credentials,
        )
        env.stack.pop()  # the Create*Job response; .sync returns the final Describe*Job
        job_name = normalised_parameters[name_key]

        def resolve() -> dict | None:
            description = getattr(client, describe)(**{name_key: job_name})
            description.pop("ResponseMetadata", None)
            status = description[status_key]
            if status == "Completed":
                return jsonable(description)
            if status in ("Failed", "Stopped"):
                cause = json.dumps(jsonable(description))
                raise FailureEventException(task_failure(self, env, "States.TaskFailed", cause))
            return None

        return resolve


_original_factory = state_task_factory.state_task_service_for


def _state_task_service_for(service_name: str):
    if service_name == "sagemaker":
        return StateTaskServiceSageMaker()
    return _original_factory(service_name)


_PATCHES = [
    (moto_jsonata, "_eval_jsonata", _eval_jsonata),
    (StateTaskServiceAwsSdk, "_normalise_parameters", _normalise_parameters),
    (StateTaskServiceAwsSdk, "_normalise_response", _normalise_response),
    (parser_models.StepFunctionsParserBackend, "start_execution", _start_execution),
    (state_task_factory, "state_task_service_for", _state_task_service_for),
    # CloudFormation's StateMachine resource reads this module global at call time
    (sfn_models, "stepfunctions_backends", parser_models.stepfunctions_parser_backends),
]


def install() -> contextlib.AbstractContextManager:
    return patched(_PATCHES + stepfunctions_errors.PATCHES)
