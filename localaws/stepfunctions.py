"""Step Functions execution gaps in moto's ASL interpreter (moto 5.2.5), closed.

- JSONata: stepfunctions_jsonata.py.
- `aws-sdk:*` request and response shapes: stepfunctions_shapes.py.
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

Error naming: stepfunctions_errors.py. Map items in the context object: stepfunctions_map.py. Nested
executions: stepfunctions_nested.py. History pages and execution logs: stepfunctions_executions.py.
"""

from __future__ import annotations

import contextlib
import json
import uuid

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
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

from localaws import (
    stepfunctions_errors,
    stepfunctions_executions,
    stepfunctions_jsonata,
    stepfunctions_map,
    stepfunctions_nested,
    stepfunctions_shapes,
    stepfunctions_time,
)
from localaws.patching import patched
from localaws.stepfunctions_errors import sagemaker_error, task_failure
from localaws.stepfunctions_shapes import jsonable, operation_model

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
        operation = operation_model("sagemaker", self.resource.api_action)
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
    (parser_models.StepFunctionsParserBackend, "start_execution", _start_execution),
    (state_task_factory, "state_task_service_for", _state_task_service_for),
    # CloudFormation's StateMachine resource reads this module global at call time
    (sfn_models, "stepfunctions_backends", parser_models.stepfunctions_parser_backends),
]


def install() -> contextlib.AbstractContextManager:
    return patched(
        _PATCHES
        + stepfunctions_shapes.PATCHES
        + stepfunctions_errors.PATCHES
        + stepfunctions_jsonata.PATCHES
        + stepfunctions_map.PATCHES
        + stepfunctions_nested.PATCHES
        + stepfunctions_executions.PATCHES
        + stepfunctions_time.PATCHES
    )
