"""CloudFormation behaviour that `cdk deploy` / `cdk destroy` depend on, fixed in moto's backend.

Gaps closed (moto 5.2.5), each patched only while a LocalAccount is active:
- Stack operations run in the background with the statuses, events, order and rollback
  CloudFormation has (stack_operations.py): moto ran them inside the API call, never showed
  `*_IN_PROGRESS`, deleted removed resources before creating new ones on update, rolled nothing
  back, and deleted in arbitrary order with retries.
- Custom resources (custom_resources.py): moto skips `AWS::CloudFormation::CustomResource`, sends
  only `Create`, asynchronously, with a ResponseURL that has no scheme. Here both types get
  Create, Update and Delete (and Delete for the old resource of a replacement, in cleanup), over
  an asynchronous invocation and an https:// ResponseURL, answered at any time up to the
  resource's ServiceTimeout.
- S3 buckets: moto's delete silently keeps a non-empty bucket; here it fails with BucketNotEmpty,
  and the stack ends DELETE_FAILED (still listed) with the reason.
- S3 buckets' `NotificationConfiguration.EventBridgeConfiguration` was ignored, so a bucket made
  by a stack never sent its object events to EventBridge; here it is applied on create and
  update (the Lambda/Queue/Topic configurations stay unsupported and are refused by name).
- Change sets (what `cdk deploy` uses): executing one never built the stack's Outputs; change
  sets were found by name across all stacks, so a second stack's deploy (CDK names every change
  set `cdk-deploy-change-set`) waited on another stack's; and `UsePreviousValue` for a parameter
  that only had its template default (`cdk deploy --method=direct`) failed. All three fixed.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation.custom_model import CustomModel
from moto.cloudformation.exceptions import AlreadyExistsException, ValidationError
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudformation.utils import generate_stack_id, random_suffix
from moto.core.responses import ActionResult, EmptyResult
from moto.s3 import models as s3_models
from moto.s3.exceptions import BucketNotEmpty

from localaws import custom_resources, stack_operations, tls
from localaws.custom_resources import CustomResourceFailedError, Target
from localaws.patching import patched
from localaws.stack_operations import deletion_order

__all__ = ["CustomResourceFailedError", "deletion_order", "install"]

CUSTOM_RESOURCE_TYPE = "AWS::CloudFormation::CustomResource"


def _backend(account_id: str, region: str) -> cfn_models.CloudFormationBackend:
    return cfn_models.cloudformation_backends[account_id][region]


# --- custom resources -----------------------------------------------------------------------------

_original_class_from_type = parsing.resource_class_from_type


def _resource_class_from_type(resource_type: str):
    if resource_type == CUSTOM_RESOURCE_TYPE:  # CDK's default type, which moto skips
        return CustomModel
    return _original_class_from_type(resource_type)


def _custom_model(target: Target, request_id: str, physical_id: str, properties: dict):
    resource = CustomModel(target.region, request_id, target.logical_id, physical_id)
    resource.stack_id = target.stack_id
    resource.resource_type = target.resource_type
    resource.properties = properties
    resource.account_id = target.account
    resource.cf_resource_type = target.resource_type
    resource.logical_resource_id = target.logical_id
    return resource


def _target_of(resource: CustomModel) -> Target:
    return Target(
        resource.account_id,
        resource.region_name,
        resource.stack_id,
        resource.logical_id,
        resource.resource_type,
    )


@classmethod
def _create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    properties = cloudformation_json["Properties"]
    stack = _backend(account_id, region_name).get_stack(kwargs["StackId"])
    target = Target(
        account_id, region_name, stack.stack_id, kwargs["LogicalId"], kwargs["ResourceType"]
    )
    try:
        answer = custom_resources.request("Create", target, properties)
    except CustomResourceFailedError as err:
        # CloudFormation sends Delete to it when rolling back, with the id its answer named
        # (or one it generates), so the failed resource stays part of the stack until then.
        named = err.physical_id or f"{stack.name}-{target.logical_id}-{random_suffix()}"
        failed = _custom_model(target, "", named, properties)
        stack.resource_map._parsed_resources[target.logical_id] = failed
        raise
    resource = _custom_model(target, answer["RequestId"], answer["PhysicalResourceId"], properties)
    resource.set_data(answer.get("Data") or {})
    stack.add_custom_resource(resource)
    return resource


def _delete(self, account_id: str, region: str) -> None:
    custom_resources.request(
        "Delete", _target_of(self), self.properties, physical_id=self.physical_resource_id
    )


@classmethod
def _update(
    cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
):
    properties = cloudformation_json["Properties"]
    old = original_resource.properties
    if properties == old:
        return original_resource
    if properties.get("ServiceToken") != old.get("ServiceToken"):
        raise CustomResourceFailedError("Modifying service token is not allowed.")
    target = _target_of(original_resource)
    try:
        answer = custom_resources.request(
            "Update",
            target,
            properties,
            physical_id=original_resource.physical_resource_id,
            old_properties=old,
        )
    except CustomResourceFailedError:
        original_resource.properties = properties  # a rollback sends Update back to `old`
        raise
    if answer["PhysicalResourceId"] != original_resource.physical_resource_id:
        replacement = _custom_model(target, answer["RequestId"], answer["PhysicalResourceId"], {})
        replacement.properties = properties
        replacement.set_data(answer.get("Data") or {})
        _backend(account_id, region_name).get_stack(target.stack_id).add_custom_resource(
            replacement
        )
        return replacement  # the old one gets its Delete in the cleanup phase
    original_resource.set_data(answer.get("Data") or {})
    original_resource.properties = properties
    return original_resource


# --- resources: events and the failing one -------------------------------------------------------

_original_parse_and_create = parsing.parse_and_create_resource


def _will_create(resource_json: dict, resources_map) -> bool:
    condition = resource_json.get("Condition")
    if condition and not resources_map.lazy_condition_map[condition]:
        return False
    return parsing.resource_class_from_type(resource_json["Type"]) is not None


def _parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name):
    """moto's creation of one resource, with its events; a failure names the resource."""
    stack = _backend(account_id, region_name).stacks.get(resources_map.stack_id)
    if stack is None or not _will_create(resource_json, resources_map):
        return _original_parse_and_create(
            logical_id, resource_json, resources_map, account_id, region_name
        )
    resource_type = resource_json["Type"]
    stack_operations.resource_event(stack, logical_id, resource_type, "CREATE_IN_PROGRESS")
    try:
        resource = _original_parse_and_create(
            logical_id, resource_json, resources_map, account_id, region_name
        )
    except Exception as err:
        first = stack_operations.failed_resource(err) is None
        if first:
            err.localaws_logical_id = logical_id
        why = stack_operations.reason(err) if first else "Resource creation cancelled"
        stack_operations.resource_event(
            stack, logical_id, resource_type, "CREATE_FAILED", None, why
        )
        raise
    physical = getattr(resource, "physical_resource_id", None)
    stack_operations.resource_event(stack, logical_id, resource_type, "CREATE_COMPLETE", physical)
    return resource


@property
def _stack_resources(self):
    """Resources created so far: reading never creates one (moto's map creates on access)."""
    return [d.resource for d in stack_operations.current_resources(self)]


@property
def _outputs(self):
    """Outputs as of the last completed operation (none while the stack is being created)."""
    return getattr(self, "localaws_outputs", None)


def _apply_notifications(bucket, cloudformation_json) -> None:
    """The bucket's EventBridge switch from its template (AWS::S3::Bucket NotificationConfiguration,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-s3-bucket-notificationconfiguration.html)."""
    notifications = cloudformation_json.get("Properties", {}).get("NotificationConfiguration")
    if not notifications:
        return
    unsupported = sorted(set(notifications) - {"EventBridgeConfiguration"})
    if unsupported:
        raise ValidationError(
            bucket.name, f"localaws applies only EventBridgeConfiguration, not {unsupported}"
        )
    if str(notifications["EventBridgeConfiguration"].get("EventBridgeEnabled")).lower() == "true":
        bucket.set_notification_configuration({"EventBridgeConfiguration": {}})


def _create_bucket(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    bucket = _original_create_bucket(
        resource_name, cloudformation_json, account_id, region_name, **kwargs
    )
    _apply_notifications(bucket, cloudformation_json)
    return bucket


_original_create_bucket = s3_models.FakeBucket.create_from_cloudformation_json


def _update_bucket(
    cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
):
    bucket = _original_update_bucket(
        original_resource,
        new_resource_name,
        cloudformation_json,
        account_id=account_id,
        region_name=region_name,
    )
    _apply_notifications(bucket, cloudformation_json)
    return bucket


_original_update_bucket = s3_models.FakeBucket.update_from_cloudformation_json


def _delete_bucket(cls, resource_name, cloudformation_json, account_id, region_name):
    backend = s3_models.s3_backends[account_id][s3_models.get_partition(region_name)]
    bucket = backend.get_bucket(resource_name)
    if bucket.keys:
        raise BucketNotEmpty()  # AWS refuses; CloudFormation reports DELETE_FAILED
    backend.delete_bucket(resource_name)


def _delete_resources(self) -> None:
    """ResourceMap.delete for moto's own callers (nested stacks): in order, first failure raised."""
    stack = _backend(self._account_id, self._region_name).get_stack(self.stack_id)
    outcome = stack_operations.delete_resources(stack, stack_operations.current_resources(stack))
    for logical_id in outcome.gone:
        self._parsed_resources.pop(logical_id, None)
    if outcome.failed:
        raise ValidationError(self.stack_id, message="; ".join(outcome.failed.values()))


# --- stack operations in the background -----------------------------------------------------------

_ON_FAILURE: contextvars.ContextVar[str] = contextvars.ContextVar(
    "localaws_on_failure", default=stack_operations.ROLLBACK
)


def _reading_on_failure(method: Callable) -> Callable:
    """The request's DisableRollback / OnFailure, for the backend call it makes."""

    def wrapper(self):
        option = stack_operations.ROLLBACK
        if self._get_bool_param("DisableRollback", False):
            option = stack_operations.DO_NOTHING
        token = _ON_FAILURE.set(self._get_param("OnFailure") or option)
        try:
            return method(self)
        finally:
            _ON_FAILURE.reset(token)

    return wrapper


def _create_stack(
    self,
    name: str,
    template: str,
    parameters: dict[str, Any],
    notification_arns: list[str] | None = None,
    tags: dict[str, str] | None = None,
    role_arn: str | None = None,
    enable_termination_protection: bool | None = False,
    timeout_in_mins: int | None = None,
    stack_policy_body: str | None = None,
) -> cfn_models.Stack:
    if name in [stack.name for stack in self.stacks.values()]:
        raise AlreadyExistsException(f"Stack {name} already exists")
    stack = cfn_models.Stack(  # parses the template and parameters: errors surface here
        stack_id=generate_stack_id(name, self.region_name, self.account_id),
        name=name,
        template=template,
        parameters=parameters,
        account_id=self.account_id,
        region_name=self.region_name,
        notification_arns=notification_arns,
        tags=tags,
        role_arn=role_arn,
        cross_stack_resources=self.exports,
        enable_termination_protection=enable_termination_protection,
        timeout_in_mins=timeout_in_mins,
        stack_policy_body=stack_policy_body,
    )
    self.stacks[stack.stack_id] = stack
    _start_create(self, stack)
    return stack


def _start_create(backend, stack: cfn_models.Stack) -> None:
    on_failure = _ON_FAILURE.get()
    stack.disable_rollback = on_failure == stack_operations.DO_NOTHING
    stack_operations.set_status(stack, "CREATE_IN_PROGRESS", "User Initiated")
    stack_operations.in_background(
        stack, lambda: stack_operations.create_stack(backend, stack, on_failure)
    )


def _update_stack(self, name, template, role_arn, parameters, tags) -> cfn_models.Stack:
    stack = self.get_stack(name)
    stack_operations.refuse_if_busy(stack)
    resolved = self._resolve_update_parameters(instance=stack, incoming_params=parameters)
    stack.role_arn = role_arn
    if tags is not None:
        stack.tags = tags
    _start_update(self, stack, template, resolved)
    return stack


def _start_update(backend, stack, template, parameters) -> None:
    on_failure = _ON_FAILURE.get()
    stack_operations.set_status(stack, "UPDATE_IN_PROGRESS", "User Initiated")
    stack_operations.in_background(
        stack,
        lambda: stack_operations.update_stack(backend, stack, template, parameters, on_failure),
    )


def _delete_stack(self, name_or_stack_id: str) -> None:
    stack = self.stacks.get(name_or_stack_id) or next(
        (s for s in self.stacks.values() if s.name == name_or_stack_id), None
    )
    if stack is None or stack.status == "DELETE_IN_PROGRESS":
        return  # deleting a stack that is gone, or going, succeeds
    if stack.status.endswith("_IN_PROGRESS"):
        raise ValidationError(
            stack.stack_id,
            message=f"Stack [{stack.name}] cannot be deleted while in status {stack.status}",
        )
    stack_operations.set_status(stack, "DELETE_IN_PROGRESS", "User Initiated")
    stack_operations.in_background(stack, lambda: stack_operations.delete_stack(self, stack))


# --- change sets ------------------------------------------------------------------------------------


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
    if change_set.change_set_type == "UPDATE":
        stack_operations.refuse_if_busy(stack)
        change_set.execution_status = "EXECUTE_COMPLETE"
        _start_update(self, stack, change_set.template, change_set.parameters)
        return
    change_set.execution_status = "EXECUTE_COMPLETE"
    # A CREATE change set's stack was made empty (REVIEW_IN_PROGRESS): give it its template.
    stack.template = change_set.template
    stack._parse_template()
    stack.parameters = change_set.parameters or {}
    stack.cross_stack_resources = self.exports
    stack.resource_map = stack._create_resource_map()
    stack.output_map = stack._create_output_map()
    _start_create(self, stack)


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
    (parsing, "resource_class_from_type", _resource_class_from_type),
    (parsing, "parse_and_create_resource", _parse_and_create_resource),
    (CustomModel, "create_from_cloudformation_json", _create),
    (CustomModel, "delete", _delete),
    (CustomModel, "update_from_cloudformation_json", _update),
    (s3_models.FakeBucket, "delete_from_cloudformation_json", classmethod(_delete_bucket)),
    (s3_models.FakeBucket, "create_from_cloudformation_json", classmethod(_create_bucket)),
    (s3_models.FakeBucket, "update_from_cloudformation_json", classmethod(_update_bucket)),
    (parsing.ResourceMap, "delete", _delete_resources),
    (cfn_models.Stack, "stack_resources", _stack_resources),
    (cfn_models.Stack, "outputs", _outputs),
    (cfn_models.CloudFormationBackend, "create_stack", _create_stack),
    (cfn_models.CloudFormationBackend, "update_stack", _update_stack),
    (cfn_models.CloudFormationBackend, "delete_stack", _delete_stack),
    (cfn_models.CloudFormationBackend, "describe_change_set", _describe_change_set),
    (cfn_models.CloudFormationBackend, "delete_change_set", _delete_change_set),
    (cfn_models.CloudFormationBackend, "execute_change_set", _execute_change_set),
    (cfn_models.CloudFormationBackend, "_resolve_update_parameters", _resolve_update_parameters),
    (CloudFormationResponse, "describe_change_set", _response_describe_change_set),
    (CloudFormationResponse, "delete_change_set", _response_delete_change_set),
    *(
        (CloudFormationResponse, name, _reading_on_failure(getattr(CloudFormationResponse, name)))
        for name in ("create_stack", "update_stack", "execute_change_set")
    ),
]


@contextlib.contextmanager
def install() -> Iterator[None]:
    """Every CloudFormation fix, a local CA and the https ResponseURL listener, until exit."""
    with (
        tls.install() as authority,
        custom_resources.install(authority),
        patched(_PATCHES),
    ):
        yield
