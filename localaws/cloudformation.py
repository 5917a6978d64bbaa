"""CloudFormation behaviour that `cdk deploy` / `cdk destroy` depend on, fixed in moto's backend.

Gaps closed (moto 5.2.5), each patched only while a LocalAccount is active:
- Custom resources: moto sends only `Create`, asynchronously, with a ResponseURL that has no
  scheme, and never `Delete`. Here Create and Delete are sent synchronously (Update too, when
  properties change) with an http:// ResponseURL to a loopback listener, and a FAILED answer
  fails the operation as in AWS.
- Stack deletion: moto deletes resources in arbitrary order, retrying failures, and its S3
  bucket delete silently keeps a non-empty bucket. Here resources are deleted in reverse
  dependency order (DependsOn, Ref, GetAtt, Sub), a non-empty bucket fails the delete with
  BucketNotEmpty, and the stack ends DELETE_FAILED (still listed) instead of vanishing.
- Change sets (what `cdk deploy` uses): executing one never built the stack's Outputs; change
  sets were found by name across all stacks, so a second stack's deploy (CDK names every change
  set `cdk-deploy-change-set`) waited on another stack's; and `UsePreviousValue` for a parameter
  that only had its template default (`cdk deploy --method=direct`) failed. All three fixed.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from moto.awslambda.utils import get_backend as get_lambda_backend
from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation.custom_model import CustomModel
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.s3 import models as s3_models
from moto.s3.exceptions import BucketNotEmpty

from localaws.patching import patched


class CustomResourceFailedError(RuntimeError):
    """A custom resource's handler answered FAILED (or never answered)."""


class _Responses:
    """A loopback HTTP listener that receives custom resources' answers (the ResponseURL)."""

    def __init__(self) -> None:
        self.received: dict[str, dict] = {}
        responses = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                responses.received[self.path.rsplit("/", 1)[-1]] = body
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, request_id: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/cfnresponse/{request_id}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_RESPONSES: _Responses | None = None


def _send(
    request_type: str,
    account_id: str,
    region: str,
    stack_id: str,
    logical_id: str,
    resource_type: str,
    properties: dict,
    physical_id: str | None = None,
    old_properties: dict | None = None,
) -> dict:
    """Invoke the custom resource's Lambda synchronously and return its answer."""
    function = get_lambda_backend(account_id, region).get_function(properties["ServiceToken"])
    request_id = str(uuid.uuid4())
    event = {
        "RequestType": request_type,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": _RESPONSES.url(request_id),
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": properties,
    }
    if physical_id:
        event["PhysicalResourceId"] = physical_id
    if old_properties is not None:
        event["OldResourceProperties"] = old_properties
    payload, errored, _ = function._invoke_lambda(event=event)
    answer = _RESPONSES.received.pop(request_id, None)
    if answer is None:
        detail = payload if errored else "the handler did not answer on the ResponseURL"
        raise CustomResourceFailedError(f"{logical_id} ({request_type}): {detail}")
    if answer.get("Status") != "SUCCESS":
        raise CustomResourceFailedError(
            f"{logical_id} ({request_type}) failed: {answer.get('Reason')}"
        )
    return answer


@classmethod
def _create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    properties = cloudformation_json["Properties"]
    stack_id = kwargs["StackId"]
    answer = _send(
        "Create",
        account_id,
        region_name,
        stack_id,
        kwargs["LogicalId"],
        kwargs["ResourceType"],
        properties,
    )
    resource = CustomModel(
        region_name, answer["RequestId"], kwargs["LogicalId"], answer["PhysicalResourceId"]
    )
    resource.set_data(answer.get("Data") or {})
    resource.stack_id = stack_id
    resource.resource_type = kwargs["ResourceType"]
    resource.properties = properties
    stack = cfn_models.cloudformation_backends[account_id][region_name].get_stack(stack_id)
    stack.add_custom_resource(resource)
    return resource


def _delete(self, account_id: str, region: str) -> None:
    _send(
        "Delete",
        account_id,
        region,
        self.stack_id,
        self.logical_id,
        self.resource_type,
        self.properties,
        physical_id=self.physical_resource_id,
    )


@classmethod
def _update(
    cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
):
    properties = cloudformation_json["Properties"]
    if properties != original_resource.properties:
        answer = _send(
            "Update",
            account_id,
            region_name,
            original_resource.stack_id,
            original_resource.logical_id,
            original_resource.resource_type,
            properties,
            physical_id=original_resource.physical_resource_id,
            old_properties=original_resource.properties,
        )
        original_resource.set_data(answer.get("Data") or {})
        original_resource.properties = properties
    return original_resource


@classmethod
def _delete_bucket(cls, resource_name, cloudformation_json, account_id, region_name):
    backend = s3_models.s3_backends[account_id][s3_models.get_partition(region_name)]
    bucket = backend.get_bucket(resource_name)
    if bucket.keys:
        raise BucketNotEmpty()  # AWS refuses; CloudFormation reports DELETE_FAILED
    backend.delete_bucket(resource_name)


_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def _references(value: Any) -> set[str]:
    """Logical ids a resource refers to (Ref, Fn::GetAtt, Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= set(_REFERENCE.findall(text)) if isinstance(text, str) else set()
                found |= _references(inner[1]) if isinstance(inner, list) else set()
            else:
                found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def deletion_order(resources: dict[str, dict]) -> list[str]:
    """Dependents before what they depend on: the reverse of a creation order."""
    depends = {}
    for logical_id, body in resources.items():
        explicit = body.get("DependsOn", [])
        explicit = [explicit] if isinstance(explicit, str) else explicit
        refs = _references(body.get("Properties", {})) | set(explicit)
        depends[logical_id] = {r for r in refs if r in resources and r != logical_id}
    created: list[str] = []
    remaining = dict(depends)
    while remaining:
        ready = sorted(k for k, deps in remaining.items() if not deps - set(created))
        if not ready:  # a cycle: fall back to the remaining ones in name order
            ready = sorted(remaining)
        for logical_id in ready:
            created.append(logical_id)
            remaining.pop(logical_id)
    return list(reversed(created))


def _delete_resources(self) -> None:
    kept = {k: v for k, v in self._resource_json_map.items() if v.get("DeletionPolicy") != "Retain"}
    for logical_id in deletion_order(kept):
        parsed = self._parsed_resources.get(logical_id)
        if parsed is None or isinstance(parsed, str):
            continue
        self._delete_resource(parsed, self._resource_json_map[logical_id])
        self._parsed_resources.pop(logical_id)


def _delete_stack(self, name_or_stack_id: str) -> None:
    stack = self.stacks.get(name_or_stack_id) or next(
        (s for s in self.stacks.values() if s.name == name_or_stack_id), None
    )
    if stack is None:
        return
    try:
        stack.delete()
    except Exception as err:  # AWS keeps the stack, DELETE_FAILED, with the reason
        reason = f"{type(err).__name__}: {getattr(err, 'message', None) or err}"
        stack._add_stack_event("DELETE_FAILED", resource_status_reason=reason)
        stack.status = "DELETE_FAILED"
        return
    self.stacks.pop(stack.stack_id, None)
    self.deleted_stacks[stack.stack_id] = stack
    for export in stack.exports:
        self.exports.pop(export.name, None)


def _find_change_set(self, change_set_name: str, stack_name: str | None = None):
    if change_set_name in self.change_sets:  # an ARN
        return self.change_sets[change_set_name]
    matches = [
        cs
        for cs in self.change_sets.values()
        if cs.change_set_name == change_set_name
        and (stack_name is None or stack_name in (cs.stack.name, cs.stack.stack_id))
    ]
    if not matches:
        raise ValidationError(change_set_name)
    return matches[-1]


def _describe_change_set(self, change_set_name: str, stack_name: str | None = None):
    return _find_change_set(self, change_set_name, stack_name)


def _delete_change_set(self, change_set_name: str, stack_name: str | None = None) -> None:
    change_set = _find_change_set(self, change_set_name, stack_name)
    self.change_sets.pop(change_set.change_set_id, None)


def _execute_change_set(self, change_set_name: str, stack_name: str | None = None) -> None:
    change_set = _find_change_set(self, change_set_name, stack_name)
    stack = self.stacks[change_set.stack_id]
    kind = change_set.change_set_type
    stack._add_stack_event(f"{kind}_IN_PROGRESS", resource_status_reason="User Initiated")
    change_set.apply()
    stack.template = change_set.template
    stack._parse_template()
    if change_set.parameters:
        stack.parameters = change_set.parameters
    stack.output_map = stack._create_output_map()  # what moto forgot: the stack's Outputs
    stack._add_stack_event(f"{kind}_COMPLETE")
    change_set.execution_status = "EXECUTE_COMPLETE"
    stack.status = f"{kind}_COMPLETE"


def _response_describe_change_set(self):
    change_set = self.cloudformation_backend.describe_change_set(
        change_set_name=self._get_param("ChangeSetName"), stack_name=self._get_param("StackName")
    )
    return ActionResult(change_set)


def _response_delete_change_set(self):
    self.cloudformation_backend.delete_change_set(
        change_set_name=self._get_param("ChangeSetName"), stack_name=self._get_param("StackName")
    )
    return EmptyResult()


_original_resolve = cfn_models.CloudFormationBackend._resolve_update_parameters


def _resolve_update_parameters(self, instance, incoming_params):
    # UsePreviousValue for a parameter the stack never stored: its template default applies.
    kept = [
        p
        for p in incoming_params
        if not (p.get("UsePreviousValue") and p["ParameterKey"] not in instance.parameters)
    ]
    return _original_resolve(self, instance, kept)


_PATCHES = [
    (CustomModel, "create_from_cloudformation_json", _create),
    (CustomModel, "delete", _delete),
    (CustomModel, "update_from_cloudformation_json", _update),
    (s3_models.FakeBucket, "delete_from_cloudformation_json", _delete_bucket),
    (parsing.ResourceMap, "delete", _delete_resources),
    (cfn_models.CloudFormationBackend, "delete_stack", _delete_stack),
    (cfn_models.CloudFormationBackend, "describe_change_set", _describe_change_set),
    (cfn_models.CloudFormationBackend, "delete_change_set", _delete_change_set),
    (cfn_models.CloudFormationBackend, "execute_change_set", _execute_change_set),
    (CloudFormationResponse, "describe_change_set", _response_describe_change_set),
    (CloudFormationResponse, "delete_change_set", _response_delete_change_set),
    (cfn_models.CloudFormationBackend, "_resolve_update_parameters", _resolve_update_parameters),
]


@contextlib.contextmanager
def install():
    global _RESPONSES
    _RESPONSES = _Responses()
    try:
        with patched(_PATCHES):
            yield
    finally:
        _RESPONSES.close()
        _RESPONSES = None
