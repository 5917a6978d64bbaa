"""EventBridge Scheduler schedules that fire, on the account's virtual clock.

Gaps closed (moto 5.2.5):
- Schedules are stored but never fire. Here every ENABLED schedule fires when the account's
  clock reaches its next time (`rate` from its StartDate or its creation, `cron` and `at` in its
  ScheduleExpressionTimezone, within StartDate/EndDate): a state machine target gets
  StartExecution, a Lambda function an asynchronous Invoke, a universal target
  (`arn:aws:scheduler:::aws-sdk:<service>:<action>`) that API call, each with the target's
  Input (context attributes such as `<aws.scheduler.scheduled-time>` filled in) and only
  through a RoleArn that scheduler.amazonaws.com may assume. FlexibleTimeWindow OFF fires at
  the time; FLEXIBLE at a random moment within MaximumWindowInMinutes after it. A schedule with
  ActionAfterCompletion DELETE deletes itself once it has nothing left to invoke (a one-time
  `at()` after its invocation).
- Any ScheduleExpression was accepted; here `rate`, `cron` and `at` are checked as Scheduler
  does (schedule_expressions.py) and anything else is ValidationException "Invalid Schedule
  Expression <expression>.".
- CreationDate/LastModificationDate and the StartDate check used the host's clock; here the
  account's. CreateSchedule in a group that does not exist failed with an internal error;
  here ResourceNotFoundException, as Scheduler answers.
- `AWS::Scheduler::Schedule` and `AWS::Scheduler::ScheduleGroup` were skipped by CloudFormation
  ("No Moto CloudFormation support"); here they are created, updated and deleted.

How a schedule meets the clock (the decision): a schedule does not make the clock jump. Virtual
time is moved by those who wait (clock.py, rule 2) or by hand (`clock.advance`); a schedule is
an observer that fires every occurrence the clock has passed, in order, within POLL real
seconds. Were a schedule a sleeper, an idle account holding a `rate(5 minutes)` schedule would
race through virtual days (each jump firing the next occurrence), breaking rule 1: left alone,
the account ages at the speed of the real world. Each schedule's next run is a clock `alarm`:
no jump passes it, so a schedule fires on time even when a waiter's jump would skip it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import random
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
from botocore import xform_name
from moto.awslambda.utils import get_backend as lambda_backend
from moto.cloudformation import parsing
from moto.scheduler import models as scheduler_models
from moto.scheduler.exceptions import ValidationException
from moto.stepfunctions.responses import get_backend as stepfunctions_backend

from localaws import clock, lambda_runtime
from localaws.events import assumable_by
from localaws.patching import patched
from localaws.schedule_expressions import At, InvalidExpressionError, Rate, parse, zone
from localaws.sfn_services import boto_service_name

LOG = logging.getLogger("localaws.scheduler")
SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
POLL = 0.05  # real seconds between looks at the clock
CATCH_UP = 1000  # occurrences fired at most per look (a jump of a year over rate(1 minute))


# --- when ------------------------------------------------------------------------------------------


def epoch(moment: Any) -> float | None:
    """StartDate/EndDate as epoch seconds (the API stores numbers, CloudFormation ISO text)."""
    if moment in (None, ""):
        return None
    if isinstance(moment, int | float):
        return float(moment)
    if isinstance(moment, datetime.datetime):
        return moment.timestamp()
    text = str(moment).replace("Z", "+00:00")
    parsed = datetime.datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)).timestamp()


def next_occurrence(schedule, after: float) -> float | None:
    """The schedule's first occurrence later than `after`; None when it has no more."""
    expression = parse(schedule.schedule_expression)
    tz = zone(schedule.schedule_expression_timezone)
    if isinstance(expression, At):  # one-time: StartDate and EndDate do not apply
        moment = expression.moment(tz)
        return moment if moment > after else None
    start, end = epoch(schedule.start_date), epoch(schedule.end_date)
    if isinstance(expression, Rate):
        moment = expression.next_after(after, start if start is not None else armed_at(schedule))
    else:
        floor = after if start is None else max(after, start - 1e-6)  # no earlier than StartDate
        moment = expression.next_after(floor, tz)
    if moment is None or (end is not None and moment > end):
        return None
    return moment


def armed_at(schedule) -> float:
    """When the schedule was created or last updated, on the account's clock."""
    return getattr(schedule, "localaws_armed_at", schedule.last_modified_date)


def flexible_delay(schedule, occurrence: float) -> float:
    window = schedule.flexible_time_window or {}
    if window.get("Mode") != "FLEXIBLE":
        return 0.0
    minutes = float(window.get("MaximumWindowInMinutes") or 0)
    return random.Random(f"{schedule.arn}{occurrence}").uniform(0, minutes * 60)  # noqa: S311


# --- what ------------------------------------------------------------------------------------------


def target_input(schedule, occurrence: float, execution_id: str) -> str:
    """The target's Input with Scheduler's context attributes filled in ("{}" when none)."""
    text = schedule.target.get("Input") or "{}"
    scheduled = datetime.datetime.fromtimestamp(occurrence, datetime.UTC)
    attributes = {
        "<aws.scheduler.schedule-arn>": schedule.arn,
        "<aws.scheduler.scheduled-time>": scheduled.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": "1",
    }
    for placeholder, value in attributes.items():
        text = text.replace(placeholder, value)
    return text


def invoke_target(schedule, account_id: str, text: str) -> None:
    """Call the schedule's target as Scheduler does (templated or universal)."""
    target = schedule.target
    arn = target["Arn"]
    if not assumable_by(account_id, target.get("RoleArn"), SCHEDULER_PRINCIPAL):
        raise PermissionError(f"Scheduler cannot assume {target.get('RoleArn')} for {arn}")
    parts = arn.split(":")
    if parts[2] == "states":
        backend = stepfunctions_backend(parts[4], parts[3])
        backend.start_execution(arn, name=str(uuid.uuid4()), execution_input=text)
    elif parts[2] == "lambda":
        function = lambda_backend(parts[4], parts[3]).get_function(arn)
        function.invoke(text, {"x-amz-invocation-type": "Event"}, {})
    elif parts[2] == "scheduler" and parts[5] == "aws-sdk":
        _universal(parts[6], parts[7], text, schedule.arn.split(":")[3])
    else:
        raise NotImplementedError(f"localaws Scheduler has no target type for {arn}")


def _universal(service: str, action: str, text: str, region: str) -> None:
    runtime = lambda_runtime.current()
    if runtime is None:
        raise RuntimeError("universal targets need the local account's endpoint")
    client = boto3.client(
        boto_service_name(service),
        region_name=region,
        endpoint_url=runtime.endpoint(),
        aws_access_key_id="localaws",
        aws_secret_access_key="localaws",  # noqa: S106 - the local account's fake key
    )
    getattr(client, xform_name(action[0].upper() + action[1:]))(**json.loads(text))


def _fire(schedule, account_id: str, occurrences: list[float]) -> None:
    """Invoke the target once per occurrence, in order, as work on the clock."""
    with clock.holding():
        for occurrence in occurrences:
            text = target_input(schedule, occurrence, str(uuid.uuid4()))
            try:
                invoke_target(schedule, account_id, text)
            except Exception as err:  # Scheduler would retry, then dead-letter; logged here
                LOG.warning("schedule %s: invoking its target failed: %s", schedule.arn, err)


# --- the dispatcher -----------------------------------------------------------------------------------


@dataclass
class _Plan:
    """A schedule's progress: its last occurrence fired and the next one (None: completed)."""

    after: float
    next: float | None
    alarm: float | None = None  # the occurrence the clock has an alarm for


class Dispatcher:
    """Looks at the clock every POLL real seconds and fires what has come due."""

    def __init__(self) -> None:
        self._plans: dict[tuple[str, float], _Plan] = {}  # (arn, armed at) -> progress
        self._lock = threading.RLock()  # a tick from the poll thread or from a clock alarm
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="localaws-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _ring(self) -> None:
        try:
            self.tick(clock.time())
        except Exception:  # never let one bad schedule stop every other
            LOG.exception("scheduler tick failed")

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            try:
                self.tick(clock.time())
            except Exception:  # never let one bad schedule stop every other
                LOG.exception("scheduler tick failed")

    def tick(self, now: float) -> None:
        """Fire every occurrence up to `now` of every ENABLED schedule, each schedule in order."""
        with self._lock:
            self._tick(now)

    def _tick(self, now: float) -> None:
        seen = set()
        for account_id, backend in _backends():
            for group in list(backend.schedule_groups.values()):
                for schedule in list(group.schedules.values()):
                    key = (schedule.arn, armed_at(schedule))
                    seen.add(key)
                    if schedule.state == "ENABLED":
                        self._advance(key, schedule, account_id, backend, group, now)
        for key in set(self._plans) - seen:
            del self._plans[key]

    def _advance(self, key, schedule, account_id, backend, group, now: float) -> None:
        plan = self._plans.get(key)
        if plan is None:
            start = key[1] - 1e-6
            plan = self._plans[key] = _Plan(start, next_occurrence(schedule, start))
        due = []
        while plan.next is not None and len(due) < CATCH_UP:
            if plan.next + flexible_delay(schedule, plan.next) > now:
                break
            due.append(plan.next)
            plan.after, plan.next = plan.next, next_occurrence(schedule, plan.next)
        if due:
            clock.HoldingThread(target=_fire, args=(schedule, account_id, due), daemon=True).start()
        if plan.next is not None and plan.alarm != plan.next:
            plan.alarm = plan.next  # no clock jump passes the next run: it fires on time
            clock.alarm(plan.next + flexible_delay(schedule, plan.next), self._ring)
        completed = plan.next is None and group.schedules.get(schedule.name) is schedule
        if completed and schedule.action_after_completion == "DELETE":
            backend.delete_schedule(group.name, schedule.name)


def _backends():
    for account_id, regions in list(scheduler_models.scheduler_backends.items()):
        for backend in list(regions.values()):
            yield account_id, backend


# --- the API: validation, the account's clock -----------------------------------------------------------


def check_expression(expression: str, timezone: str | None) -> None:
    try:
        parse(expression)
        zone(timezone)
    except InvalidExpressionError as err:
        raise ValidationException(f"Invalid Schedule Expression {expression}.") from err


def _stamp(schedule) -> None:
    schedule.creation_date = getattr(schedule, "localaws_created", None) or clock.time()
    schedule.localaws_created = schedule.creation_date
    schedule.last_modified_date = schedule.localaws_armed_at = clock.time()


_original_create = scheduler_models.EventBridgeSchedulerBackend.create_schedule
_original_update = scheduler_models.EventBridgeSchedulerBackend.update_schedule


def _create_schedule(self, **kwargs: Any):
    check_expression(kwargs["schedule_expression"], kwargs.get("schedule_expression_timezone"))
    self.get_schedule_group(kwargs.get("group_name"))  # ResourceNotFoundException if missing
    schedule = _original_create(self, **kwargs)
    _stamp(schedule)
    return schedule


def _update_schedule(self, **kwargs: Any):
    check_expression(kwargs["schedule_expression"], kwargs.get("schedule_expression_timezone"))
    schedule = _original_update(self, **kwargs)
    _stamp(schedule)
    return schedule


def _validate_start_date(self, start_date):
    """moto's check ("cannot be earlier than 5 minutes ago"), against the account's clock."""
    recurring_cron = self.schedule_expression.count("*")  # moto applies it to these only
    if recurring_cron and start_date is not None and epoch(start_date) < clock.time() - 300:
        raise ValidationException(
            message="The StartDate you specify cannot be earlier than 5 minutes ago."
        )
    return start_date


# --- CloudFormation --------------------------------------------------------------------------------------


class _CfnResource:
    """What moto's CloudFormation asks of a resource (CloudFormationModel's interface, without
    subclassing it: a subclass would join moto's model map for good, even outside localaws)."""

    def is_created(self) -> bool:
        return True


class CfnSchedule(_CfnResource):
    """AWS::Scheduler::Schedule (Ref: the name; GetAtt: Arn)."""

    def __init__(self, backend, schedule) -> None:
        self.backend, self.schedule = backend, schedule
        self.physical_resource_id = schedule.name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Scheduler::Schedule"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @classmethod
    def has_cfn_attr(cls, attribute: str) -> bool:
        return attribute == "Arn"

    def get_cfn_attribute(self, attribute: str) -> str:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute == "Arn":
            return self.schedule.arn
        raise UnformattedGetAttTemplateException()

    @staticmethod
    def _arguments(name: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {
            "description": properties.get("Description"),
            "end_date": epoch(properties.get("EndDate")),
            "flexible_time_window": properties["FlexibleTimeWindow"],
            "group_name": properties.get("GroupName"),
            "kms_key_arn": properties.get("KmsKeyArn"),
            "name": properties.get("Name") or name,
            "schedule_expression": properties["ScheduleExpression"],
            "schedule_expression_timezone": properties.get("ScheduleExpressionTimezone"),
            "start_date": epoch(properties.get("StartDate")),
            "state": properties.get("State"),
            "target": properties["Target"],
        }

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        backend = scheduler_models.scheduler_backends[account_id][region_name]
        arguments = cls._arguments(resource_name[:64], cloudformation_json["Properties"])
        return cls(backend, backend.create_schedule(**arguments, action_after_completion=None))

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        arguments = cls._arguments(
            original_resource.schedule.name, cloudformation_json["Properties"]
        )
        if (arguments["name"], arguments["group_name"] or "default") != (
            original_resource.schedule.name,
            original_resource.schedule.group_name,
        ):  # a new name or group replaces the schedule
            original_resource.delete(account_id, region_name)
            return cls.create_from_cloudformation_json(
                arguments["name"], cloudformation_json, account_id, region_name
            )
        backend = original_resource.backend
        return cls(backend, backend.update_schedule(**arguments))

    def delete(self, account_id: str, region_name: str) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.backend.delete_schedule(self.schedule.group_name, self.schedule.name)


class CfnScheduleGroup(_CfnResource):
    """AWS::Scheduler::ScheduleGroup (Ref: the name; GetAtt: Arn, CreationDate, State...)."""

    def __init__(self, backend, group) -> None:
        self.backend, self.group = backend, group
        self.physical_resource_id = group.name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Scheduler::ScheduleGroup"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @classmethod
    def has_cfn_attr(cls, attribute: str) -> bool:
        return attribute in ("Arn", "CreationDate", "LastModificationDate", "State")

    def get_cfn_attribute(self, attribute: str) -> Any:
        return self.group.to_dict()[attribute]

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        backend = scheduler_models.scheduler_backends[account_id][region_name]
        properties = cloudformation_json["Properties"]
        name = properties.get("Name") or resource_name[:64]
        return cls(backend, backend.create_schedule_group(name, properties.get("Tags") or []))

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        return original_resource  # only Tags can change in place

    def delete(self, account_id: str, region_name: str) -> None:
        self.backend.delete_schedule_group(self.group.name)


_CFN_TYPES = {model.cloudformation_type(): model for model in (CfnSchedule, CfnScheduleGroup)}


def _resource_class_from_type(original):
    def resource_class_from_type(resource_type: str):
        return _CFN_TYPES.get(resource_type) or original(resource_type)

    return resource_class_from_type


# --- installing ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _installed():
    backend = scheduler_models.EventBridgeSchedulerBackend
    patches = [
        (backend, "create_schedule", _create_schedule),
        (backend, "update_schedule", _update_schedule),
        (scheduler_models.Schedule, "_validate_start_date", _validate_start_date),
        (
            parsing,
            "resource_class_from_type",
            _resource_class_from_type(parsing.resource_class_from_type),
        ),
    ]
    dispatcher = Dispatcher()
    with patched(patches):
        dispatcher.start()
        try:
            yield dispatcher
        finally:
            dispatcher.stop()


def install() -> contextlib.AbstractContextManager:
    """Schedules validated, firing on the virtual clock, and in CloudFormation, while open."""
    return _installed()
