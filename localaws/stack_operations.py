"""Stack operations as CloudFormation runs them: in the background, in order, with rollback.

Gaps closed (moto 5.2.5): moto runs create/update/delete inside the API call and reports only the
final status, so a stack is never seen `*_IN_PROGRESS` (`DELETE_IN_PROGRESS` never), and an
operation that waits (a custom resource answered later) blocks the caller or fails. Its update
deletes removed resources first and then creates and updates (with retries instead of an
order); a failure leaves the stack half-changed with no rollback; its delete retries in any order.

Here, as CloudFormation documents (pages in localaws/README.md):
- the API call returns at once and the operation runs in a thread; describe_stacks shows
  CREATE/UPDATE/DELETE_IN_PROGRESS, UPDATE_COMPLETE_CLEANUP_IN_PROGRESS, then the outcome, and
  describe_stack_events has each resource's events (with the failure reason);
- create and update work in dependency order; an update creates new and updates changed
  resources first, then in its cleanup phase deletes removed ones and the old physical resource
  of a replaced custom resource (dependents first); a failed cleanup delete does not fail it;
- a failure rolls back: a create deletes what it made (ROLLBACK_COMPLETE); an update restores
  changed resources, then deletes what it added (UPDATE_ROLLBACK_COMPLETE). DisableRollback or
  OnFailure=DO_NOTHING leave CREATE_FAILED / UPDATE_FAILED; OnFailure=DELETE deletes the stack;
- a delete goes dependents first, keeps what a resource that failed to delete still needs, and
  reports every failure (DELETE_FAILED, the stack still listed).
The operation holds the virtual clock while it works, never while it waits.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation.custom_model import CustomModel
from moto.cloudformation.exceptions import ValidationError
from moto.core.common_models import CloudFormationModel

from localaws import clock
from localaws.custom_resources import CustomResourceFailedError

LOG = logging.getLogger("localaws.stack_operations")

ROLLBACK, DO_NOTHING, DELETE = "ROLLBACK", "DO_NOTHING", "DELETE"
UPDATABLE = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "CREATE_FAILED",  # only reachable with rollback disabled, which allows updates
    "UPDATE_FAILED",
}


# --- dependencies ------------------------------------------------------------------------------

_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def references(value: Any) -> set[str]:
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
                found |= references(inner[1]) if isinstance(inner, list) else set()
            else:
                found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def dependencies(resources: dict[str, dict]) -> dict[str, set[str]]:
    """For each resource, the resources (among these) it needs: DependsOn and references."""
    needs = {}
    for logical_id, body in resources.items():
        explicit = body.get("DependsOn", [])
        explicit = [explicit] if isinstance(explicit, str) else explicit
        refs = references(body.get("Properties", {})) | set(explicit)
        needs[logical_id] = {r for r in refs if r in resources and r != logical_id}
    return needs


def creation_order(resources: dict[str, dict]) -> list[str]:
    """What a resource needs comes before it; a cycle falls back to name order."""
    needs = dependencies(resources)
    created: list[str] = []
    remaining = dict(needs)
    while remaining:
        ready = sorted(k for k, deps in remaining.items() if not deps - set(created))
        for logical_id in ready or sorted(remaining):
            created.append(logical_id)
            remaining.pop(logical_id)
    return created


def deletion_order(resources: dict[str, dict]) -> list[str]:
    """Dependents before what they depend on: the reverse of a creation order."""
    return list(reversed(creation_order(resources)))


def _needed_by(name: str, needs: dict[str, set[str]]) -> set[str]:
    """Everything `name` needs, transitively."""
    found: set[str] = set()
    todo = list(needs.get(name, ()))
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(needs.get(current, ()))
    return found


# --- events --------------------------------------------------------------------------------------


def reason(err: BaseException) -> str:
    """The status reason CloudFormation would show for this failure."""
    if isinstance(err, CustomResourceFailedError):
        return err.reason
    return f"{type(err).__name__}: {getattr(err, 'message', None) or err}"


def resource_event(
    stack: cfn_models.Stack,
    logical_id: str,
    resource_type: str,
    status: str,
    physical_id: str | None = None,
    why: str | None = None,
) -> None:
    event = cfn_models.Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=physical_id or "",
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=why,
        resource_properties=None,
    )
    event.sendToSns(stack.account_id, stack.region_name, stack.notification_arns)
    stack.events.append(event)


def set_status(stack: cfn_models.Stack, status: str, why: str | None = None) -> None:
    stack._add_stack_event(status, resource_status_reason=why)
    stack.status = status
    stack.status_reason = why  # describe_stacks' StackStatusReason


def _physical_id(resource: Any) -> str | None:
    return getattr(resource, "physical_resource_id", None)


def is_resource(value: Any) -> bool:
    """A created resource object (moto's models, and localaws's own that keep out of moto's
    model registry by implementing its interface without subclassing it)."""
    return isinstance(value, CloudFormationModel) or callable(getattr(value, "is_created", None))


# --- running in the background ---------------------------------------------------------------


_FAILED_AFTER = {
    "CREATE_IN_PROGRESS": "CREATE_FAILED",
    "ROLLBACK_IN_PROGRESS": "ROLLBACK_FAILED",
    "UPDATE_IN_PROGRESS": "UPDATE_FAILED",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_ROLLBACK_COMPLETE",
    "DELETE_IN_PROGRESS": "DELETE_FAILED",
}


def in_background(stack: cfn_models.Stack, work: Callable[[], None]) -> threading.Thread:
    """Run a stack operation in its own thread; it holds the virtual clock while it works."""

    def body() -> None:
        try:
            work()
        except Exception as err:  # a bug here must not leave the stack IN_PROGRESS forever
            LOG.exception("stack operation on %s failed unexpectedly", stack.name)
            if stack.status in _FAILED_AFTER:
                why = f"localaws internal error: {err}"
                set_status(stack, _FAILED_AFTER[stack.status], why)

    thread = clock.HoldingThread(target=body, name=f"localaws-cfn-{stack.name}", daemon=True)
    thread.start()
    return thread


def refuse_if_busy(stack: cfn_models.Stack) -> None:
    """CloudFormation refuses to change a stack that is not at rest in an updatable state."""
    if stack.status not in UPDATABLE:
        raise ValidationError(
            stack.stack_id,
            message=f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.",
        )


# --- deleting ------------------------------------------------------------------------------------


@dataclass
class Doomed:
    """A resource to delete: its logical id, model object and template body."""

    logical_id: str
    resource: Any
    body: dict
    policy: str = "DeletionPolicy"  # UpdateReplacePolicy for the old half of a replacement


@dataclass
class Deleted:
    """What a round of deletions did: the resources gone, and those that failed, with why."""

    gone: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)


def delete_resources(stack: cfn_models.Stack, doomed: list[Doomed]) -> Deleted:
    """Delete dependents first; keep what a resource that failed to delete still needs.

    A retained resource (its policy says Retain) counts as gone: it leaves the stack.
    """
    resource_map = stack.resource_map
    by_id = {d.logical_id: d for d in doomed}
    needs = dependencies({d.logical_id: d.body for d in doomed})
    outcome = Deleted()
    kept: set[str] = set()
    for logical_id in deletion_order({d.logical_id: d.body for d in doomed}):
        item = by_id[logical_id]
        if not is_resource(item.resource) or logical_id in kept:
            continue
        resource_type = item.body.get("Type", "")
        physical = _physical_id(item.resource)
        if item.body.get(item.policy) == "Retain":
            resource_event(stack, logical_id, resource_type, "DELETE_SKIPPED", physical)
            outcome.gone.add(logical_id)
            continue
        resource_event(stack, logical_id, resource_type, "DELETE_IN_PROGRESS", physical)
        try:
            resource_map._delete_resource(item.resource, item.body)
        except Exception as err:
            outcome.failed[logical_id] = reason(err)
            kept |= _needed_by(logical_id, needs)
            resource_event(stack, logical_id, resource_type, "DELETE_FAILED", physical, reason(err))
        else:
            outcome.gone.add(logical_id)
            resource_event(stack, logical_id, resource_type, "DELETE_COMPLETE", physical)
    return outcome


def _forget(stack: cfn_models.Stack, logical_ids: set[str]) -> None:
    for logical_id in logical_ids:
        stack.resource_map._parsed_resources.pop(logical_id, None)


def current_resources(stack: cfn_models.Stack) -> list[Doomed]:
    """Every resource the stack holds now (created ones only), with its template body."""
    resource_map = stack.resource_map
    parsed = resource_map._parsed_resources
    return [
        Doomed(logical_id, parsed[logical_id], body)
        for logical_id, body in resource_map._resource_json_map.items()
        if is_resource(parsed.get(logical_id))
    ]


def _failed_summary(verb: str, failed: dict[str, str]) -> str:
    return f"The following resource(s) failed to {verb}: [{', '.join(sorted(failed))}]. "


def delete_stack(backend: cfn_models.CloudFormationBackend, stack: cfn_models.Stack) -> None:
    """DELETE_IN_PROGRESS -> every resource deleted -> DELETE_COMPLETE, or DELETE_FAILED."""
    outcome = delete_resources(stack, current_resources(stack))
    _forget(stack, outcome.gone)
    if outcome.failed:
        set_status(stack, "DELETE_FAILED", _failed_summary("delete", outcome.failed))
        return
    set_status(stack, "DELETE_COMPLETE")
    for name in [n for n, e in backend.exports.items() if e.exporting_stack_id == stack.stack_id]:
        backend.exports.pop(name, None)
    backend.stacks.pop(stack.stack_id, None)
    backend.deleted_stacks[stack.stack_id] = stack


# --- creating ------------------------------------------------------------------------------------


def failed_resource(err: BaseException) -> str | None:
    return getattr(err, "localaws_logical_id", None)


def publish(backend: cfn_models.CloudFormationBackend, stack: cfn_models.Stack) -> None:
    """Outputs and exports become visible when an operation completes, as in CloudFormation."""
    stack.output_map = stack._create_output_map()
    outputs = ORIGINAL_OUTPUTS.fget(stack)
    exports = stack.exports
    for export in exports:
        owner = backend.exports.get(export.name)
        if owner is not None and owner.exporting_stack_id != stack.stack_id:
            raise ValidationError(
                stack.stack_id,
                message=f"Export with name {export.name} is already exported by stack "
                f"{owner.exporting_stack_id}",
            )
    for name in [n for n, e in backend.exports.items() if e.exporting_stack_id == stack.stack_id]:
        backend.exports.pop(name)
    for export in exports:
        backend.exports[export.name] = export
    stack.localaws_outputs = outputs


ORIGINAL_OUTPUTS = cfn_models.Stack.outputs


def create_stack(
    backend: cfn_models.CloudFormationBackend, stack: cfn_models.Stack, on_failure: str
) -> None:
    """Resources in dependency order; on failure, rollback (or not) as OnFailure says."""
    try:
        stack.resource_map.create(stack.template_dict)
        publish(backend, stack)
    except Exception as err:
        culprit = failed_resource(err)
        why = (
            _failed_summary("create", {culprit: ""}) + "Rollback requested by user."
            if culprit
            else reason(err)
        )
        _after_create_failure(backend, stack, on_failure, why)
        return
    set_status(stack, "CREATE_COMPLETE")


def _after_create_failure(
    backend: cfn_models.CloudFormationBackend, stack: cfn_models.Stack, on_failure: str, why: str
) -> None:
    if on_failure == DO_NOTHING:
        set_status(stack, "CREATE_FAILED", why)
        return
    if on_failure == DELETE:
        set_status(stack, "DELETE_IN_PROGRESS", why)
        delete_stack(backend, stack)
        return
    set_status(stack, "ROLLBACK_IN_PROGRESS", why)
    outcome = delete_resources(stack, current_resources(stack))
    _forget(stack, outcome.gone)
    if outcome.failed:
        set_status(stack, "ROLLBACK_FAILED", _failed_summary("delete", outcome.failed))
    else:
        set_status(stack, "ROLLBACK_COMPLETE")


# --- updating ------------------------------------------------------------------------------------


@dataclass
class _Before:
    """What the stack was before an update, to roll back to."""

    template: Any
    template_dict: dict
    parameters: dict
    json_map: dict
    input_parameters: dict

    @classmethod
    def of(cls, stack: cfn_models.Stack) -> _Before:
        resource_map = stack.resource_map
        return cls(
            stack.template,
            stack.template_dict,
            stack.parameters,
            resource_map._resource_json_map,
            resource_map.input_parameters,
        )


@dataclass
class _Progress:
    touched: list[tuple[str, Any]] = field(default_factory=list)  # (logical id, object before)
    replaced: list[Doomed] = field(default_factory=list)  # old halves, deleted in cleanup


def _load_template(
    stack: cfn_models.Stack, template: Any, template_dict: dict, parameters: dict | None
) -> None:
    resource_map = stack.resource_map
    stack.template, stack.template_dict = template, template_dict
    resource_map._template = template_dict
    if parameters:
        resource_map.input_parameters = parameters
        stack.parameters = parameters
    resource_map.load_mapping()
    resource_map.load_parameters()
    resource_map.load_conditions()
    resource_map._resource_json_map = template_dict["Resources"]


def _apply(stack: cfn_models.Stack, diff: dict[str, list[str]], progress: _Progress) -> None:
    """Create added and update changed resources, what they need first."""
    resource_map = stack.resource_map
    account, region = stack.account_id, stack.region_name
    for logical_id in creation_order(resource_map._resource_json_map):
        body = resource_map._resource_json_map[logical_id]
        if logical_id in diff["Add"]:
            _ = resource_map[logical_id]  # created on first access, events by the create hook
            continue
        if logical_id not in diff["Modify"] or not parsing.resource_class_from_type(body["Type"]):
            continue  # unchanged, or a type moto does not model (it never existed here)
        before = resource_map._parsed_resources.get(logical_id)
        progress.touched.append((logical_id, before))
        resource_type, physical = body.get("Type", ""), _physical_id(before)
        resource_event(stack, logical_id, resource_type, "UPDATE_IN_PROGRESS", physical)
        try:
            after = parsing.parse_and_update_resource(
                logical_id, body, resource_map, account_id=account, region_name=region
            )
        except Exception as err:
            err.localaws_logical_id = logical_id
            resource_event(stack, logical_id, resource_type, "UPDATE_FAILED", physical, reason(err))
            raise
        if after is None:  # moto cannot update this type: the resource stays as it was
            continue
        resource_map._parsed_resources[logical_id] = after
        if _physical_id(after) != physical and isinstance(before, CustomModel):
            progress.replaced.append(Doomed(logical_id, before, {}, "UpdateReplacePolicy"))
        resource_event(stack, logical_id, resource_type, "UPDATE_COMPLETE", _physical_id(after))


def update_stack(
    backend: cfn_models.CloudFormationBackend,
    stack: cfn_models.Stack,
    template: Any,
    parameters: dict | None,
    on_failure: str,
) -> None:
    """Create and update first, then clean up what was removed or replaced."""
    before = _Before.of(stack)
    new_dict = cfn_models.Stack.parse_template(template) if isinstance(template, str) else template
    diff = stack.resource_map.build_resource_diff(new_dict, parameters)
    progress = _Progress()
    try:
        _load_template(stack, template, new_dict, parameters)
        _apply(stack, diff, progress)
        publish(backend, stack)
    except Exception as err:
        culprit = failed_resource(err)
        verb = "create" if culprit in diff["Add"] else "update"
        why = _failed_summary(verb, {culprit: ""}) if culprit else reason(err)
        if on_failure == DO_NOTHING:
            set_status(stack, "UPDATE_FAILED", why)
        else:
            _roll_back_update(stack, before, diff, progress, new_dict, why)
        return
    set_status(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
    removed = [
        Doomed(name, stack.resource_map._parsed_resources.get(name), before.json_map[name])
        for name in diff["Remove"]
    ]
    for old in progress.replaced:
        old.body = before.json_map[old.logical_id]
    _clean_up(stack, removed, progress.replaced)
    for name in diff["Remove"]:
        stack.resource_map._parsed_resources.pop(name, None)
    set_status(stack, "UPDATE_COMPLETE")


def _clean_up(stack: cfn_models.Stack, removed: list[Doomed], replaced: list[Doomed]) -> None:
    """Removed resources, then old halves of replacements; failures are reported, not fatal."""
    delete_resources(stack, removed)
    for old in replaced:  # each on its own: it shares its logical id with its replacement
        delete_resources(stack, [old])


def _roll_back_update(
    stack: cfn_models.Stack,
    before: _Before,
    diff: dict[str, list[str]],
    progress: _Progress,
    new_dict: dict,
    why: str,
) -> None:
    """Restore changed resources to their previous template, then delete what the update added."""
    set_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS", why)
    resource_map = stack.resource_map
    parsed = resource_map._parsed_resources
    new_halves: list[Doomed] = []
    try:
        _load_template(stack, before.template, before.template_dict, before.input_parameters)
        stack.parameters = before.parameters
        for logical_id, old in reversed(progress.touched):
            body = before.json_map[logical_id]
            current = parsed.get(logical_id)
            if isinstance(old, CustomModel) and current is not old:  # keep old, delete new
                new_halves.append(Doomed(logical_id, current, new_dict["Resources"][logical_id]))
                parsed[logical_id] = old
                continue
            resource_event(stack, logical_id, body.get("Type", ""), "UPDATE_IN_PROGRESS")
            restored = parsing.parse_and_update_resource(
                logical_id, body, resource_map, stack.account_id, stack.region_name
            )
            parsed[logical_id] = restored if restored is not None else old
            resource_event(stack, logical_id, body.get("Type", ""), "UPDATE_COMPLETE")
        stack.output_map = stack._create_output_map()
    except Exception as err:
        set_status(stack, "UPDATE_ROLLBACK_FAILED", reason(err))
        return
    set_status(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    added = [
        Doomed(name, parsed.get(name), new_dict["Resources"][name])
        for name in diff["Add"]
        if is_resource(parsed.get(name))
    ]
    delete_resources(stack, added)
    for half in new_halves:
        delete_resources(stack, [half])
    for item in added:
        parsed.pop(item.logical_id, None)
    set_status(stack, "UPDATE_ROLLBACK_COMPLETE")
