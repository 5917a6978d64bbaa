"""Nested executions: `arn:aws:states:::states:startExecution` (request-response, `.sync`, `.sync:2`).

Gap closed (moto 5.2.5): the optimized Step Functions integration sent the state's PascalCase
parameters (`StateMachineArn`, `Input`) to botocore unchanged and read the PascalCase
`ExecutionArn` from a camelCase response, so every startExecution task ended with `States.Runtime`
(`'StateMachineArn'`) and started no child. Here both are mapped with botocore's model (as for
`aws-sdk:*` tasks), and datetimes become JSON-safe, so:

- request-response returns `{"ExecutionArn", "StartDate"}` as soon as the child has started;
- `.sync` waits for the child and returns DescribeExecution in PascalCase, `Output` a JSON string;
- `.sync:2` does the same with `Input`/`Output` parsed into JSON;
- a child that fails, times out or is aborted fails the task with `States.TaskFailed`, the
  DescribeExecution JSON as the cause.

Source: https://docs.aws.amazon.com/step-functions/latest/dg/connect-stepfunctions.html
"""

from __future__ import annotations

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)

from localaws.stepfunctions_shapes import normalise_parameters, normalise_response

_original_normalise_parameters = StateTaskServiceSfn._normalise_parameters


def _normalise_parameters(
    self: StateTaskServiceSfn,
    parameters: dict,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    """moto's (Input as a JSON string), then PascalCase to the botocore shape."""
    _original_normalise_parameters(self, parameters, boto_service_name, service_action_name)
    normalise_parameters(self, parameters, boto_service_name, service_action_name)


PATCHES = [
    (StateTaskServiceSfn, "_normalise_parameters", _normalise_parameters),
    (StateTaskServiceSfn, "_normalise_response", normalise_response),
]
