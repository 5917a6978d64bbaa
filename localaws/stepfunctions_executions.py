"""Executions as the Step Functions API shows them: paged history, execution logs.

Gaps closed (moto 5.2.5):
- `GetExecutionHistory` ignored `maxResults`, `nextToken` and `reverseOrder`: every event came
  back at once, oldest first. Here pages of `maxResults` (default 100, as the API reference says)
  with an opaque `nextToken`, newest first when asked; a token that is not one fails with
  `InvalidToken`. https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html
- The logging configuration was stored but no execution wrote a log: every execution was started
  without a logging session (and moto's session could not have written one: it handed the logs
  backend objects of the wrong type). Here each execution of a machine whose level is ALL, ERROR
  or FATAL writes the events of that level to its log group, one JSON object per event with
  `id`, `type`, `details`, `previous_event_id`, `event_timestamp` (epoch milliseconds, as a
  string) and `execution_arn`; `details` lose `input`/`output` unless `includeExecutionData`.
  Levels: https://docs.aws.amazon.com/step-functions/latest/dg/cloudwatch-log-level.html, format:
  https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html. The stream is
  `states/<state machine name>/<execution name>` (local choice: AWS names streams itself).
- A state machine created by CloudFormation lost its `LoggingConfiguration`.
- CloudFormation created (or updated) a state machine whose definition CreateStateMachine refuses:
  the resource handler makes the same API call, so it fails with the same `InvalidDefinition`
  (localaws.rules.stepfunctions) and the stack rolls back.
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-stepfunctions-statemachine.html
- `StopExecution` answered without `stopDate` (required by the API's output shape: the date was
  set later, when the worker noticed) and dropped the request's `error` and `cause`
  (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html).
- `DescribeExecution` of a TIMED_OUT execution had no `stopDate` ("if the execution ended, the
  date the execution stopped": https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

from moto.core.responses import ActionResult
from moto.logs.exceptions import ResourceNotFoundException
from moto.logs.models import logs_backends
from moto.stepfunctions.exceptions import InvalidToken
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.api import InvalidDefinition
from moto.stepfunctions.parser.asl.eval.event.logging import (
    CloudWatchLoggingConfiguration,
    CloudWatchLoggingSession,
    HistoryLog,
)
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.responses import StepFunctionResponse

from localaws import clock
from localaws.rules.stepfunctions import invalid_definition

DEFAULT_PAGE = 100

# --- history pages -----------------------------------------------------------------------------


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as err:
        raise InvalidToken(repr(token)) from err


def page_of(events: list[dict], max_results: int | None, token: str | None, reverse: bool):
    """One page of events and the token for the next, if any."""
    ordered = list(reversed(events)) if reverse else events
    start, size = _offset(token), max_results or DEFAULT_PAGE
    page = ordered[start : start + size]
    more = start + size < len(ordered)
    return page, (_token(start + size) if more else None)


def _get_execution_history(self: StepFunctionResponse):
    arn = self._get_param("executionArn")
    history = self.stepfunction_backend.get_execution_history(arn)
    events, token = page_of(
        history["events"],
        self._get_int_param("maxResults"),
        self._get_param("nextToken"),
        bool(self._get_bool_param("reverseOrder", False)),
    )
    output: dict[str, Any] = {"events": events}
    if token:
        output["nextToken"] = token
    return ActionResult(output)


def _describe_execution(self: StepFunctionResponse):
    result = _original_describe_execution(self)
    described = result.result
    if described.get("status") == "TIMED_OUT" and "stopDate" not in described:
        execution = self.stepfunction_backend.describe_execution(described["executionArn"])
        described["stopDate"] = execution.stop_date
    return result


_original_describe_execution = StepFunctionResponse.describe_execution


def _stop_execution(self: StepFunctionResponse):
    """StopExecution with the request's error and cause, answering its stopDate (required)."""
    arn = self._get_param("executionArn")
    execution = self.stepfunction_backend.describe_execution(arn)  # ExecutionDoesNotExist
    if execution.stop_date is None:
        stopped, error, cause = clock.now(), self._get_param("error"), self._get_param("cause")
        execution.stop(stop_date=stopped, error=error or "", cause=cause or "")
        execution.stop_date = execution.stop_date or stopped
        # moto reflects an error and cause only for a FAILED execution; DescribeExecution of a
        # stopped one shows what StopExecution was given
        execution.error = error if error is not None else execution.error
        execution.cause = cause if cause is not None else execution.cause
    return ActionResult({"stopDate": execution.stop_date})


# --- execution logs ----------------------------------------------------------------------------


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase keys as the API's camelCase."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _millis(timestamp: Any) -> int:
    if isinstance(timestamp, str):
        timestamp = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return int(timestamp.timestamp() * 1000)


class ExecutionLog(CloudWatchLoggingSession):
    """Writes an execution's events to its state machine's log group, as Step Functions does."""

    def __init__(self, execution: Execution, configuration: CloudWatchLoggingConfiguration):
        super().__init__(execution.exec_arn, configuration)
        self.stream = f"states/{execution.state_machine.name}/{execution.name}"

    def publish_history_log(self, history_log: HistoryLog) -> None:
        millis = _millis(history_log["event_timestamp"])
        record = {
            "id": history_log["id"],
            "type": getattr(history_log["type"], "value", history_log["type"]),
            "details": history_log.get("details", {}),
            "previous_event_id": history_log["previous_event_id"],
            "event_timestamp": str(millis),
            "execution_arn": history_log["execution_arn"],
        }
        event = {"timestamp": millis, "message": json.dumps(record, default=str)}
        logs = logs_backends[self.configuration.log_account_id][self.configuration.log_region]
        group = self.configuration.log_group_name
        try:
            logs.put_log_events(group, self.stream, [event])
        except ResourceNotFoundException:
            if group not in logs.groups:
                return  # AWS refuses the configuration at create; nothing to write to here
            logs.create_log_stream(group, self.stream)
            logs.put_log_events(group, self.stream, [event])


def logging_session(execution: Execution) -> ExecutionLog | None:
    """The log an execution writes, if its state machine's level is not OFF."""
    machine = execution.state_machine
    stored = getattr(machine, "loggingConfiguration", None) or getattr(
        machine, "logging_config", None
    )
    settings = dict(_camel(stored or {}))
    if settings.get("level", "OFF") == "OFF":
        return None
    settings.setdefault("includeExecutionData", False)
    configuration = CloudWatchLoggingConfiguration.from_logging_configuration(
        state_machine_arn=execution.state_machine.arn, logging_configuration=settings
    )
    return ExecutionLog(execution, configuration) if configuration else None


def _start(self: Execution) -> None:
    if self._cloud_watch_logging_session is None:
        self._cloud_watch_logging_session = logging_session(self)
    _original_start(self)


_original_start = Execution.start


def _template_definition(properties: dict) -> str | None:
    """The definition a template gives, substitutions applied (None if it gives none here)."""
    if isinstance(properties.get("DefinitionString"), str):
        text = properties["DefinitionString"]
    elif isinstance(properties.get("Definition"), dict):
        text = json.dumps(properties["Definition"])
    else:
        return None  # DefinitionS3Location: not read by moto either
    for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + key + "}", str(value))
    return text


def _check_template_definition(cloudformation_json: dict) -> None:
    """The resource handler calls CreateStateMachine/UpdateStateMachine: the same refusal."""
    definition = _template_definition(cloudformation_json.get("Properties") or {})
    failure = invalid_definition(definition) if definition is not None else None
    if failure is not None:
        raise InvalidDefinition(failure.message)


def _from_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
    _check_template_definition(cloudformation_json)
    machine = _original_from_cloudformation.__func__(
        cls, resource_name, cloudformation_json, account_id, region_name, **kw
    )
    settings = cloudformation_json.get("Properties", {}).get("LoggingConfiguration")
    if settings:
        machine.loggingConfiguration = _camel(settings)
    return machine


_original_from_cloudformation = StateMachine.create_from_cloudformation_json


def _update_from_cloudformation(
    cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
):
    _check_template_definition(cloudformation_json)
    return _original_update_from_cloudformation.__func__(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    )


_original_update_from_cloudformation = StateMachine.update_from_cloudformation_json

PATCHES = [
    (StepFunctionResponse, "get_execution_history", _get_execution_history),
    (StepFunctionResponse, "describe_execution", _describe_execution),
    (StepFunctionResponse, "stop_execution", _stop_execution),
    (Execution, "start", _start),
    (StateMachine, "create_from_cloudformation_json", classmethod(_from_cloudformation)),
    (
        StateMachine,
        "update_from_cloudformation_json",
        classmethod(_update_from_cloudformation),
    ),
]
