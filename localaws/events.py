"""EventBridge rules deliver to Step Functions and Lambda, and S3 sends its events to the bus.

Gaps closed (moto 5.2.5):
- `Rule.send_to_targets` raises NotImplementedError for a state machine or a Lambda function
  target, and the exception ends `PutEvents` (later rules get nothing). Here a state machine
  target gets StartExecution with the target's input (the event, or `Input`, `InputPath`,
  `InputTransformer`) once its `RoleArn` is a role EventBridge may assume, and a function gets an
  asynchronous Invoke once its resource policy lets events.amazonaws.com invoke it. Each target
  is delivered on its own: one that fails (no such machine, a role or permission missing) stops
  no other; its event goes to the target's dead-letter queue when it has one.
- `PutEvents` also delivered to DISABLED rules and to schedule-only rules (no pattern matched
  every event), and stamped events with the host's time; here the rule's state counts, a
  schedule-only rule matches no event, and `time` is the account's (virtual) clock.
- `PutTargets` accepted a state machine (or Kinesis, CodeBuild, CodePipeline) target without a
  `RoleArn`; EventBridge refuses it: ValidationException "RoleArn is required for target <arn>.".
- S3 with EventBridge notifications on sent each event to every bus's rules, ignoring their state
  and input transformers, with `time` as a number, `eTag` for `etag` and `reason` "ObjectCreated".
  Here the event goes to the default bus only, shaped as S3 documents it (`reason` PutObject,
  CopyObject, CompleteMultipartUpload, DeleteObject...). GetBucketNotificationConfiguration
  also left EventBridgeConfiguration out (CDK's notifications handler reads it back).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import fnmatch
import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from moto.awslambda.utils import get_backend as lambda_backend
from moto.events import models as events_models
from moto.events.exceptions import ValidationException
from moto.iam.models import iam_backends
from moto.s3 import notifications as s3_notifications
from moto.s3.responses import S3Response
from moto.sqs.models import sqs_backends
from moto.stepfunctions.responses import get_backend as stepfunctions_backend

from localaws import clock
from localaws.patching import patched

LOG = logging.getLogger("localaws.events")
EVENTS_PRINCIPAL = "events.amazonaws.com"
# Targets EventBridge reaches only through the role given in the target's RoleArn
ROLE_REQUIRED = {"states", "kinesis", "codebuild", "codepipeline"}


class DeliveryFailedError(RuntimeError):
    """A target could not be reached (AWS counts it in FailedInvocations)."""


# --- the event as targets receive it -------------------------------------------------------------


def _iso(moment: Any) -> str:
    if isinstance(moment, int | float):
        moment = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    if isinstance(moment, datetime.datetime):
        return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(moment)


def delivered_form(event: dict[str, Any]) -> dict[str, Any]:
    """The event JSON a target receives: the envelope fields, `time` in ISO 8601."""
    shaped = {k: v for k, v in event.items() if k not in ("ingestion-time", "replay-name")}
    shaped["time"] = _iso(event.get("time") or clock.time())
    return shaped


# --- input: Input, InputPath, InputTransformer ----------------------------------------------------

_MISSING = object()
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+|\*)\]")


def json_path(document: Any, path: str) -> Any:
    """EventBridge's JSON path subset: `$.a.b-c[0]`, `[*]`; _MISSING when nothing is there."""
    values = [document]
    for name, index in _SEGMENT.findall(path.strip().removeprefix("$")):
        found = []
        for value in values:
            if name and isinstance(value, dict) and name in value:
                found.append(value[name])
            elif index == "*" and isinstance(value, list):
                found.extend(value)
            elif index and index != "*" and isinstance(value, list) and int(index) < len(value):
                found.append(value[int(index)])
        values = found
    if not values:
        return _MISSING
    return values[0] if len(values) == 1 or "[*]" not in path else values


def _variables(rule, transformer: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    values = {
        name: json_path(event, path)
        for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    values.update(
        {
            "aws.events.rule-arn": rule.arn,
            "aws.events.rule-name": rule.name,
            "aws.events.event.ingestion-time": _iso(clock.time()),
            "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
            "aws.events.event.json": event,
        }
    )
    return values


def transform(template: str, variables: dict[str, Any]) -> str:
    """Fill an InputTemplate: a variable inside a JSON string is inserted as text (unescaped, as
    EventBridge does), one in a JSON value position as JSON (a string gets its quotes). A
    variable with no value is null in a value position and empty inside a string."""
    json_mode = template.lstrip()[:1] in ("{", "[", '"')
    out, in_string, i = [], False, 0
    while i < len(template):
        char = template[i]
        match = re.match(r"<([A-Za-z0-9_.\-]+)>", template[i:]) if char == "<" else None
        if match and match.group(1) in variables:
            value = variables[match.group(1)]
            out.append(_render(value, as_text=in_string or not json_mode))
            i += match.end()
            continue
        if json_mode and char == '"' and (i == 0 or template[i - 1] != "\\"):
            in_string = not in_string
        out.append(char)
        i += 1
    return "".join(out)


def _render(value: Any, as_text: bool) -> str:
    if value is _MISSING:
        return "" if as_text else "null"
    if as_text and isinstance(value, str):
        return value
    return json.dumps(value)


def target_input(rule, target: dict[str, Any], event: dict[str, Any]) -> str:
    """The text a target receives for this event, as the target's input settings say."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        value = json_path(event, target["InputPath"])
        return json.dumps(None if value is _MISSING else value)
    transformer = target.get("InputTransformer")
    if transformer:
        return transform(transformer["InputTemplate"], _variables(rule, transformer, event))
    return json.dumps(event)


# --- reaching targets ------------------------------------------------------------------------------


def assumable_by(account_id: str, role_arn: str | None, service: str) -> bool:
    """The role exists and its trust policy lets `service` assume it."""
    if not role_arn:
        return False
    role_name = role_arn.rsplit("/", 1)[-1]
    roles = iam_backends[account_id][role_arn.split(":")[1] or "aws"].roles.values()
    role = next((r for r in roles if r.arn == role_arn or r.name == role_name), None)
    if role is None:
        return False
    trust = role.assume_role_policy_document
    trust = json.loads(trust) if isinstance(trust, str) else trust
    for statement in _as_list(trust.get("Statement")):
        principals = statement.get("Principal") or {}
        services = _as_list(principals.get("Service")) if isinstance(principals, dict) else []
        allowed = principals == "*" or service in services
        if statement.get("Effect") == "Allow" and allowed:
            return True
    return False


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _start_execution(rule, target: dict[str, Any], text: str) -> None:
    arn = target["Arn"]
    if not assumable_by(rule.account_id, target.get("RoleArn"), EVENTS_PRINCIPAL):
        raise DeliveryFailedError(f"EventBridge cannot assume {target.get('RoleArn')} for {arn}")
    region = arn.split(":")[3]
    backend = stepfunctions_backend(arn.split(":")[4], region)
    backend.start_execution(arn, name=str(uuid.uuid4()), execution_input=text)


def invoke_permitted(function, principal: str, source_arn: str) -> bool:
    """The function's resource policy lets `principal` invoke it for `source_arn`."""
    for statement in function.policy.statements:
        principals = statement.get("Principal") or {}
        service = principals.get("Service") if isinstance(principals, dict) else principals
        actions = _as_list(statement.get("Action"))
        if statement.get("Effect") != "Allow" or service not in (principal, "*"):
            continue
        if not any(a in ("lambda:InvokeFunction", "lambda:*", "*") for a in actions):
            continue
        conditions = statement.get("Condition") or {}
        patterns = [
            arn
            for block in conditions.values()
            for key, arns in block.items()
            if key.lower() == "aws:sourcearn"
            for arn in _as_list(arns)
        ]
        if not patterns or any(fnmatch.fnmatchcase(source_arn, p) for p in patterns):
            return True
    return False


def _invoke_function(rule, target: dict[str, Any], text: str) -> None:
    arn = target["Arn"]
    function = lambda_backend(rule.account_id, arn.split(":")[3]).get_function(arn)
    if not invoke_permitted(function, EVENTS_PRINCIPAL, rule.arn):
        raise DeliveryFailedError(f"{arn}'s resource policy does not allow {EVENTS_PRINCIPAL}")
    function.invoke(text, {"x-amz-invocation-type": "Event"}, {})


DISPATCH: dict[str, Callable[[Any, dict[str, Any], str], None]] = {
    "states": _start_execution,
    "lambda": _invoke_function,
}


def _dead_letter(rule, target: dict[str, Any], text: str, error: Exception) -> None:
    queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    if not queue_arn:
        return
    _, _, _, region, account, queue = queue_arn.split(":", 5)
    sqs_backends[account][region].send_message(
        queue_name=queue,
        message_body=text,
        message_attributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": type(error).__name__},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": str(error)[:256]},
            "RULE_ARN": {"DataType": "String", "StringValue": rule.arn},
            "TARGET_ARN": {"DataType": "String", "StringValue": target["Arn"]},
        },
    )


def _deliver(rule, target: dict[str, Any], event: dict[str, Any]) -> None:
    """One target, in its own thread, as work on the clock; a failure stays with it."""
    service = target["Arn"].split(":")[2]
    with clock.holding():
        try:
            text = target_input(rule, target, event)
            DISPATCH[service](rule, target, text)
        except Exception as err:  # the target failed; EventBridge goes on with the others
            LOG.warning("rule %s: delivery to %s failed: %s", rule.arn, target["Arn"], err)
            with contextlib.suppress(Exception):
                _dead_letter(rule, target, json.dumps(event), err)


def _in_background(work: Callable[[], None], name: str) -> None:
    clock.HoldingThread(target=work, name=name, daemon=True).start()


# --- the patches -----------------------------------------------------------------------------------

_original_send_to_targets = events_models.Rule.send_to_targets
_original_put_targets = events_models.EventsBackend.put_targets
_original_put_events = events_models.EventsBackend.put_events


def _send_to_targets(self, original_event: dict[str, Any], transform_input: bool = True) -> None:
    if self.state != "ENABLED" or not self.event_pattern.get_pattern():
        return  # a disabled rule, or one with only a schedule, matches no event
    if not self.event_pattern.matches_event(original_event):
        return
    event = delivered_form(original_event)
    for target in self.targets:
        service = target["Arn"].split(":")[2]
        if service in DISPATCH:
            _in_background(lambda t=target: _deliver(self, t, event), f"events-{self.name}")
            continue
        single = copy.copy(self)
        single.targets = [target]
        try:  # moto's own targets (logs, SQS, archives, buses, API destinations)
            _original_send_to_targets(single, original_event, transform_input)
        except Exception as err:
            LOG.warning("rule %s: delivery to %s failed: %s", self.arn, target["Arn"], err)


def _put_targets(self, name: str, event_bus_arn: str | None, targets: list[dict]) -> None:
    for target in targets:
        service = target.get("Arn", "").split(":")[2:3]
        if service and service[0] in ROLE_REQUIRED and not target.get("RoleArn"):
            raise ValidationException(f"RoleArn is required for target {target['Arn']}.")
    _original_put_targets(self, name, event_bus_arn, targets)


def _put_events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = clock.time()
    for entry in events:
        entry.setdefault("Time", now)
    return _original_put_events(self, events)


# S3 --------------------------------------------------------------------------------------------

_S3_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
    "s3:ObjectRemoved:Delete": "DeleteObject",
    "s3:ObjectRemoved:DeleteMarkerCreated": "DeleteObject",
}


def s3_event(account_id: str, bucket, event_name: str, key) -> dict[str, Any]:
    """An S3 event as EventBridge receives it (the S3 user guide's EventBridge event structure)."""
    obj = {"key": key.name, "size": key.size, "etag": key.etag.replace('"', "")}
    if getattr(key, "version_id", None) and key.version_id != "null":
        obj["version-id"] = key.version_id
    obj["sequencer"] = f"{int(clock.time() * 1e6):016X}"
    detail = {
        "version": "0",
        "bucket": {"name": bucket.name},
        "object": obj,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": account_id,
        "source-ip-address": "127.0.0.1",
        "reason": _S3_REASONS.get(event_name, event_name.split(":")[1]),
    }
    if event_name == "s3:ObjectRemoved:Delete":
        detail["deletion-type"] = "Permanently Deleted"
    elif event_name == "s3:ObjectRemoved:DeleteMarkerCreated":
        detail["deletion-type"] = "Delete Marker Created"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": s3_notifications._detail_type(event_name),
        "source": "aws.s3",
        "account": account_id,
        "time": _iso(clock.time()),
        "region": bucket.region_name,
        "resources": [bucket.arn],
        "detail": detail,
    }


def _send_event_bridge_message(account_id: str, bucket, event_name: str, key) -> None:
    try:
        event = s3_event(account_id, bucket, event_name, key)
    except ValueError:  # an event type S3 does not send to EventBridge
        return
    event["ingestion-time"] = clock.time()
    default_bus = events_models.events_backends[account_id][bucket.region_name].event_buses.get(
        "default"
    )
    for rule in list(default_bus.rules.values()) if default_bus else []:
        rule.send_to_targets(event)


_original_get_bucket_notification = S3Response.get_bucket_notification


def _get_bucket_notification(self):
    """moto leaves EventBridgeConfiguration out of GetBucketNotificationConfiguration."""
    status, headers, body = _original_get_bucket_notification(self)
    configuration = self.backend.get_bucket_notification_configuration(self.bucket_name)
    enabled = configuration is not None and configuration.event_bridge is not None
    if enabled and "EventBridgeConfiguration" not in body:
        body = re.sub(
            r"<NotificationConfiguration([^>]*)/>", r"<NotificationConfiguration\1>", body
        )
        if "</NotificationConfiguration>" not in body:
            body += "</NotificationConfiguration>"
        body = body.replace(
            "</NotificationConfiguration>",
            "<EventBridgeConfiguration/></NotificationConfiguration>",
        )
    return status, headers, body


_PATCHES = [
    (events_models.Rule, "send_to_targets", _send_to_targets),
    (events_models.EventsBackend, "put_targets", _put_targets),
    (events_models.EventsBackend, "put_events", _put_events),
    (s3_notifications, "_send_event_bridge_message", _send_event_bridge_message),
    (S3Response, "get_bucket_notification", _get_bucket_notification),
]


def install() -> contextlib.AbstractContextManager:
    """Deliver EventBridge events to state machines and functions while the context is open."""
    return patched(_PATCHES)
