"""Step Functions errors under the names AWS gives them (moto 5.2.5's ASL interpreter, patched).

Sources (AWS Step Functions Developer Guide):
- aws-sdk integrations, https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html:
  an error is `ServiceName.ErrorName`, both Pascal case, `Exception` appended when the service's
  error name lacks it (`AcmPca.ResourceNotFoundException`, `S3.BucketAlreadyExistsException`);
  the service part is the page's "exception prefix" column (`Personalize`, `SageMaker`, `S3`, `Sfn`,
  `EventBridge`, `CloudWatchLogs`), not botocore's service id. An error code the service model does
  not declare comes out as the SDK's generic exception, `<Prefix>.<Prefix>Exception`
  (`SageMaker.SageMakerException`); the cause is the SDK message,
  `<message> (Service: <Prefix>, Status Code: <n>, Request ID: <id>)`.
- Optimized SageMaker integration (https://docs.aws.amazon.com/step-functions/latest/dg/connect-sagemaker.html)
  uses the v1 SDK: modelled errors `SageMaker.<Code>Exception` (`SageMaker.ResourceLimitExceededException`),
  any other `SageMaker.AmazonSageMakerException`, cause
  `<message> (Service: AmazonSageMaker; Status Code: <n>; Error Code: <code>; Request ID: <id>; Proxy: null)`.
- Error names, https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html:
  `States.ALL` matches every error except the terminal `States.DataLimitExceeded` (caught only
  by its own name) and `States.Runtime` (never caught, not even by name); `States.Timeout` covers a task that ran past `TimeoutSeconds` or missed its
  heartbeat, `States.HeartbeatTimeout` names the latter; a Choice without a match fails with
  `States.NoChoiceMatched`.

Gaps in moto 5.2.5 closed here:
- aws-sdk errors: `KeyError('RequestId')` when the response has no request id (every error of the
  local Personalize), so the execution ended with `States.Runtime` and no Retry/Catch fired; the
  service part was the lower-case resource name (`sagemaker.sagemakerException`); unmodelled
  errors were named after the service and modelled ones after botocore's class.
- `States.ALL` caught `States.Runtime`; heartbeat expiry was `States.Timeout`; a Choice without a
  match ended with `States.Runtime` (a RuntimeError).
- The executing backend's API errors (`InvalidDefinition`, `StateMachineDoesNotExist`, ...) went
  out with an empty error code: LocalStack's exception classes set `code`, moto's `AWSError` reads
  `TYPE`.

JSONata errors (`States.QueryEvaluationError`), `$uuid`/`$hash` and the parser's scope:
stepfunctions_jsonata.py.
"""

from __future__ import annotations

import uuid

import botocore.session
from botocore.exceptions import ClientError
from moto.core.exceptions import AWSError
from moto.stepfunctions.parser import api as parser_api
from moto.stepfunctions.parser.api import (
    ExecutionFailedEventDetails,
    HistoryEventType,
    TaskFailedEventDetails,
    TaskTimedOutEventDetails,
)
from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.choice.state_choice import StateChoice
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from localaws.sfn_services import BOTO_NAMES, boto_service_name, error_prefix

_MODELS = botocore.session.get_session()


def modelled_error(boto_service: str, code: str) -> str | None:
    """The service model's name for an error code, or None if the model does not declare it."""
    for shape in _MODELS.get_service_model(boto_service).error_shapes:
        if code in (shape.name, shape.error_code):
            return shape.name
    return None


def _with_suffix(name: str) -> str:
    return name if name.endswith("Exception") else f"{name}Exception"


def _request_id(error: ClientError) -> str:
    metadata = error.response.get("ResponseMetadata", {})
    return metadata.get("RequestId") or str(uuid.uuid4())


def _status(error: ClientError) -> int:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)


def aws_sdk_error(resource_service: str, error: ClientError) -> tuple[str, str]:
    """(error name, cause) of a service error raised through an aws-sdk integration."""
    prefix = error_prefix(resource_service)
    code = error.response.get("Error", {}).get("Code", "")
    modelled = modelled_error(boto_service_name(resource_service), code)
    name = f"{prefix}.{_with_suffix(modelled or prefix)}"
    message = error.response.get("Error", {}).get("Message", "")
    cause = f"{message} (Service: {prefix}, Status Code: {_status(error)}, Request ID: {_request_id(error)})"
    return name, cause


def sagemaker_error(error: ClientError) -> tuple[str, str]:
    """(error name, cause) of a SageMaker error raised through the optimized integration."""
    code = error.response.get("Error", {}).get("Code", "")
    modelled = modelled_error("sagemaker", code)
    name = f"SageMaker.{_with_suffix(modelled) if modelled else 'AmazonSageMakerException'}"
    message = error.response.get("Error", {}).get("Message", "")
    details = "; ".join(
        [
            "Service: AmazonSageMaker",
            f"Status Code: {_status(error)}",
            f"Error Code: {code}",
            f"Request ID: {_request_id(error)}",
            "Proxy: null",
        ]
    )
    return name, f"{message} ({details})"


def task_failure(task: StateTaskService, env, error: str, cause: str) -> FailureEvent:
    """A TaskFailed event for a task, under a `States.` or a service error name."""
    if error.startswith("States."):
        name = StatesErrorName(StatesErrorNameType.from_name(error))
    else:
        name = CustomErrorName(error)
    return FailureEvent(
        env=env,
        error_name=name,
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(
            taskFailedEventDetails=TaskFailedEventDetails(
                error=error,
                cause=cause,
                resource=task._get_sfn_resource(),
                resourceType=task._get_sfn_resource_type(),
            )
        ),
    )


def _aws_sdk_from_error(self: StateTaskServiceAwsSdk, env, ex: Exception) -> FailureEvent:
    if isinstance(ex, ClientError):
        return task_failure(self, env, *aws_sdk_error(self.resource.api_name, ex))
    return _original_aws_sdk_from_error(self, env, ex)


_original_aws_sdk_from_error = StateTaskServiceAwsSdk._from_error


# --- matching: States.ALL, States.Timeout ------------------------------------------------------

# "A States.Runtime error isn't retriable, and will always cause the execution to fail"
# (concepts-error-handling): no ErrorEquals matches it, not even its own name.
_NEVER_CAUGHT = StatesErrorNameType.StatesRuntime.to_name()
# "a terminal error that can't be caught by the States.ALL error type": only by its own name.
_UNCATCHABLE = {StatesErrorNameType.StatesStatesDataLimitExceeded.to_name()}
_TIMEOUT = StatesErrorNameType.StatesTimeout.to_name()
_HEARTBEAT = StatesErrorNameType.StatesHeartbeatTimeout.to_name()


def _error_equals(self, env) -> None:
    """moto's matching, except what States.ALL must not catch and what States.Timeout covers."""
    error_name = env.stack[-1]
    if error_name.error_name == _NEVER_CAUGHT:
        env.stack.pop()
        env.stack.append(False)
        return
    if error_name.error_name in _UNCATCHABLE:
        env.stack.pop()
        env.stack.append(error_name in self.error_names)
        return
    if (
        error_name.error_name == _HEARTBEAT
        and StatesErrorName(StatesErrorNameType.StatesTimeout) in self.error_names
    ):
        env.stack.pop()
        env.stack.append(True)
        return
    _original_error_equals(self, env)


_original_error_equals = error_equals_decl.ErrorEqualsDecl._eval_body


# --- heartbeat ---------------------------------------------------------------------------------


def _task_from_error(self: StateTask, env, ex: Exception) -> FailureEvent:
    if isinstance(ex, HeartbeatTimeoutError):
        return FailureEvent(
            env=env,
            error_name=StatesErrorName(StatesErrorNameType.StatesHeartbeatTimeout),
            event_type=HistoryEventType.TaskTimedOut,
            event_details=EventDetails(
                taskTimedOutEventDetails=TaskTimedOutEventDetails(
                    resourceType=self._get_sfn_resource_type(),
                    resource=self._get_sfn_resource(),
                    error=_HEARTBEAT,
                )
            ),
        )
    event = _original_task_from_error(self, env, ex)
    details = event.event_details and event.event_details.get("taskFailedEventDetails")
    if details is not None and "resource" not in details:
        # moto names neither: AWS's TaskFailed always carries both (required in the model).
        details["resourceType"] = self._get_sfn_resource_type()
        details["resource"] = self._get_sfn_resource()
    return event


_original_task_from_error = StateTask._from_error


# --- Choice ------------------------------------------------------------------------------------


def _choice_eval_state(self: StateChoice, env) -> None:
    try:
        _original_choice_eval_state(self, env)
    except RuntimeError as err:
        if not str(err.args[0] if err.args else "").startswith("No branching option"):
            raise
        error = StatesErrorNameType.StatesNoChoiceMatched.to_name()
        raise FailureEventException(
            FailureEvent(
                env=env,
                error_name=StatesErrorName(StatesErrorNameType.StatesNoChoiceMatched),
                event_type=HistoryEventType.ExecutionFailed,
                event_details=EventDetails(
                    executionFailedEventDetails=ExecutionFailedEventDetails(
                        error=error,
                        cause=f"No Choice rule of state '{self.name}' matched and it has no Default.",
                    )
                ),
            )
        ) from err


_original_choice_eval_state = StateChoice._eval_state


# --- API error codes ---------------------------------------------------------------------------


def _api_error_codes() -> list[tuple[type, str, object]]:
    """TYPE (the error code moto serialises) and STATUS from each API exception's `code`."""
    patches: list[tuple[type, str, object]] = []
    for cls in vars(parser_api).values():
        if isinstance(cls, type) and issubclass(cls, AWSError):
            code = cls.__dict__.get("code")
            if isinstance(code, str) and not cls.TYPE:
                patches += [(cls, "TYPE", code), (cls, "STATUS", getattr(cls, "status_code", 400))]
    return patches


PATCHES = [
    (StateTaskServiceAwsSdk, "_from_error", _aws_sdk_from_error),
    (StateTaskService, "_SERVICE_NAME_SFN_TO_BOTO_OVERRIDES", BOTO_NAMES),
    (error_equals_decl.ErrorEqualsDecl, "_eval_body", _error_equals),
    (StateTask, "_from_error", _task_from_error),
    (StateChoice, "_eval_state", _choice_eval_state),
    *_api_error_codes(),
]
