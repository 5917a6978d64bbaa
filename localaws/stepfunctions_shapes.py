"""aws-sdk task requests and responses in the shapes botocore and Step Functions use.

Gaps closed (moto 5.2.5):
- request parameters were not mapped to the botocore shape, so services with camelCase members
  (personalize, states) failed with KeyError; responses were not turned into the PascalCase Step
  Functions returns. Both are done here from botocore's service model, and datetimes become
  ISO-8601 strings (moto's describe_execution cannot serialise them).
  https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
- a string given for a blob member (`aws-sdk:s3:putObject`'s `Body`) was JSON-encoded, so the
  object held `"hello"` with the quotes; here a string is its UTF-8 bytes, an object still its JSON.
"""

from __future__ import annotations

import datetime
from typing import Any

import botocore.session
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)

from localaws.sfn_services import boto_service_name

_MODELS = botocore.session.get_session()


def operation_model(service: str, action: str):
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


def normalise_parameters(self, parameters: dict, boto_service_name=None, service_action_name=None):
    """The state's PascalCase parameters mapped onto the botocore input shape."""
    operation = operation_model(
        self.resource.api_name, service_action_name or self.resource.api_action
    )
    if operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def normalise_response(self, response, boto_service_name=None, service_action_name=None):
    """The botocore response in Step Functions' PascalCase, datetimes as ISO-8601."""
    operation = operation_model(
        self.resource.api_name, service_action_name or self.resource.api_action
    )
    if operation.output_shape is not None and isinstance(response, dict):
        self._from_boto_response(response, operation.output_shape)
        converted = jsonable(response)
        response.clear()
        response.update(converted)


_original_to_boto_request_value = StateTaskService._to_boto_request_value


def _to_boto_request_value(self, request_value: Any, value_shape) -> Any:
    """A string for a blob member is its bytes (moto JSON-encoded it: S3 Body "hi" became '"hi"')."""
    if value_shape.type_name == "blob" and isinstance(request_value, str):
        return request_value.encode()
    return _original_to_boto_request_value(self, request_value, value_shape)


PATCHES = [
    (StateTaskServiceAwsSdk, "_normalise_parameters", normalise_parameters),
    (StateTaskServiceAwsSdk, "_normalise_response", normalise_response),
    (StateTaskService, "_to_boto_request_value", _to_boto_request_value),
]
