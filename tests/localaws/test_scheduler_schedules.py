"""EventBridge Scheduler: expressions checked as Scheduler does, schedules firing on the clock."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from zoneinfo import ZoneInfo

import pytest

from tests.localaws import functions, machines
from tests.localaws.cfn import deleted, settled
from tests.localaws.fidelity import Behaviour, refused, rows
from tests.localaws.test_events_delivery import PASS_MACHINE, execution_input, executions

TYPES_PAGE = "https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html"
INVALID = [
    "cron(0 1 * * * *)",  # both day-of-month and day-of-week given
    "cron(7 20 * * NOT *)",
    "cron(71 8 1 * ? *)",
    "cron(0 8 1 * ?)",  # five fields
    "rate(10 seconds)",
    "rate(10 years)",
    "rate(0 minutes)",
    "rate( 10 minutes )",
    "at(2021-12-31T23:59:59Z)",
    "at(2021-12-31)",
    "every(5 minutes)",
]
VALID = [
    "cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(15 10 ? * 6L 2030-2035)",
    "cron(0 9 ? * MON#2 *)",
    "cron(0 8 1W * ? *)",
    "cron(0/15 * * * ? *)",
    "rate(1 minute)",
    "rate(12 hours)",
    "at(2035-06-01T10:00:00)",
]


def scheduler_role(account, service: str = "scheduler.amazonaws.com") -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }
    name = f"scheduler-{uuid.uuid4().hex[:8]}"
    iam = account.client("iam")
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def schedule(account, expression: str, target: dict, **options) -> str:
    """Create a schedule (FlexibleTimeWindow OFF unless given); its name."""
    name = f"s-{uuid.uuid4().hex[:10]}"
    options.setdefault("FlexibleTimeWindow", {"Mode": "OFF"})
    account.client("scheduler").create_schedule(
        Name=name, ScheduleExpression=expression, Target=target, **options
    )
    return name


def at(moment: datetime.datetime) -> str:
    return f"at({moment:%Y-%m-%dT%H:%M:%S})"


def virtual_now(account) -> datetime.datetime:
    return account.clock.now().replace(microsecond=0)


def settle() -> None:
    """Give the scheduler a few looks at the clock (it looks every 50 ms)."""
    time.sleep(0.3)


# --- rows ------------------------------------------------------------------------------------------


def _invalid_expressions_are_refused(account) -> None:
    client = account.client("scheduler")
    identity = account.client("sts").get_caller_identity()["Account"]
    region = client.meta.region_name
    target = {
        "Arn": f"arn:aws:states:{region}:{identity}:stateMachine:never-created",
        "RoleArn": f"arn:aws:iam::{identity}:role/never-created",
    }
    for expression in INVALID:
        refused(
            lambda e=expression: client.create_schedule(
                Name=f"s-{uuid.uuid4().hex[:10]}",
                ScheduleExpression=e,
                FlexibleTimeWindow={"Mode": "OFF"},
                Target=target,
            ),
            "ValidationException",
            f"Invalid Schedule Expression {expression}.",
        )


def _one_time_schedule_fires_at_its_time_then_deletes_itself(account) -> None:
    machine = machines.create(account, PASS_MACHINE)
    when = virtual_now(account) + datetime.timedelta(hours=1)
    target = {
        "Arn": machine,
        "RoleArn": scheduler_role(account),
        "Input": json.dumps({"at": "<aws.scheduler.scheduled-time>"}),
    }
    name = schedule(account, at(when), target, ActionAfterCompletion="DELETE")
    settle()
    account.clock.advance(3600 - 30)
    settle()
    assert executions(account, machine, wait=0.2) == []  # 30 s early: nothing yet
    account.clock.advance(60)
    (execution,) = executions(account, machine)
    assert execution_input(account, execution) == {"at": f"{when:%Y-%m-%dT%H:%M:%SZ}"}
    scheduler = account.client("scheduler")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not any(s["Name"] == name for s in scheduler.list_schedules()["Schedules"]):
            break
        time.sleep(0.05)
    refused(lambda: scheduler.get_schedule(Name=name), "ResourceNotFoundException")


def _rate_fires_from_creation_then_every_period(account) -> None:
    machine = machines.create(account, PASS_MACHINE)
    schedule(account, "rate(5 minutes)", {"Arn": machine, "RoleArn": scheduler_role(account)})
    assert len(executions(account, machine, expected=1)) == 1  # no StartDate: at once
    account.clock.advance(10 * 60 + 1)
    assert len(executions(account, machine, expected=3)) == 3
    settle()
    assert len(executions(account, machine, wait=0)) == 3


def _cron_fires_at_the_local_time_of_its_time_zone(account) -> None:
    machine = machines.create(account, PASS_MACHINE)
    tokyo = ZoneInfo("Asia/Tokyo")
    local = (account.clock.now().astimezone(tokyo) + datetime.timedelta(hours=2)).replace(
        second=0, microsecond=0
    )
    target = {
        "Arn": machine,
        "RoleArn": scheduler_role(account),
        "Input": '{"at": "<aws.scheduler.scheduled-time>"}',
    }
    schedule(
        account,
        f"cron({local.minute} {local.hour} * * ? *)",
        target,
        ScheduleExpressionTimezone="Asia/Tokyo",
    )
    account.clock.advance(local.timestamp() - account.clock.time() - 20)
    settle()
    assert executions(account, machine, wait=0.2) == []
    account.clock.advance(40)
    (execution,) = executions(account, machine)
    utc = local.astimezone(datetime.UTC)
    assert execution_input(account, execution) == {"at": f"{utc:%Y-%m-%dT%H:%M:%SZ}"}


def _disabled_schedule_does_not_fire(account) -> None:
    enabled, disabled = (
        machines.create(account, PASS_MACHINE),
        machines.create(account, PASS_MACHINE),
    )
    when = virtual_now(account) + datetime.timedelta(minutes=10)
    role = scheduler_role(account)
    schedule(account, at(when), {"Arn": enabled, "RoleArn": role})
    schedule(account, at(when), {"Arn": disabled, "RoleArn": role}, State="DISABLED")
    account.clock.advance(3600)
    assert len(executions(account, enabled)) == 1
    assert executions(account, disabled, wait=0.2) == []


def _role_scheduler_cannot_assume_fires_nothing(account) -> None:
    trusted, untrusted = (
        machines.create(account, PASS_MACHINE),
        machines.create(account, PASS_MACHINE),
    )
    schedule(account, "rate(1 hour)", {"Arn": trusted, "RoleArn": scheduler_role(account)})
    lambdas_role = scheduler_role(account, service="lambda.amazonaws.com")
    schedule(account, "rate(1 hour)", {"Arn": untrusted, "RoleArn": lambdas_role})
    assert len(executions(account, trusted)) == 1
    assert executions(account, untrusted, wait=0.2) == []


HANDLER = """
def handler(event, context):
    print("scheduled", event["job"])
"""


def _function_target_is_invoked(account) -> None:
    function = functions.create(account, HANDLER)
    target = {"Arn": function, "RoleArn": scheduler_role(account), "Input": '{"job": "nightly"}'}
    schedule(account, "rate(1 day)", target)
    name = function.rsplit(":", 1)[-1]
    deadline = time.monotonic() + 15
    text = ""
    while "scheduled nightly" not in text and time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            text = functions.log_text(account, name)
        except account.client("logs").exceptions.ResourceNotFoundException:
            text = ""
    assert "scheduled nightly" in text


def _universal_target_calls_the_api(account) -> None:
    sqs = account.client("sqs")
    queue = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    target = {
        "Arn": "arn:aws:scheduler:::aws-sdk:sqs:sendMessage",
        "RoleArn": scheduler_role(account),
        "Input": json.dumps({"QueueUrl": queue, "MessageBody": "from a schedule"}),
    }
    schedule(account, "rate(1 hour)", target)
    deadline, messages = time.monotonic() + 10, []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue).get("Messages", [])
        time.sleep(0.05)
    assert [m["Body"] for m in messages] == ["from a schedule"]


def _missing_group_is_not_found(account) -> None:
    identity = account.client("sts").get_caller_identity()["Account"]
    region = account.client("scheduler").meta.region_name
    refused(
        lambda: account.client("scheduler").create_schedule(
            Name="never-created",
            GroupName=f"no-such-group-{uuid.uuid4().hex[:8]}",
            ScheduleExpression="rate(1 hour)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": f"arn:aws:states:{region}:{identity}:stateMachine:never-created",
                "RoleArn": f"arn:aws:iam::{identity}:role/never-created",
            },
        ),
        "ResourceNotFoundException",
    )


def _cloudformation_creates_schedules_that_fire(account) -> None:
    machine = machines.create(account, PASS_MACHINE)
    when = virtual_now(account) + datetime.timedelta(hours=2)
    template = {
        "Resources": {
            "Group": {"Type": "AWS::Scheduler::ScheduleGroup", "Properties": {}},
            "Nightly": {
                "Type": "AWS::Scheduler::Schedule",
                "Properties": {
                    "GroupName": {"Ref": "Group"},
                    "ScheduleExpression": at(when),
                    "FlexibleTimeWindow": {"Mode": "OFF"},
                    "Target": {"Arn": machine, "RoleArn": scheduler_role(account)},
                },
            },
        },
        "Outputs": {
            "Arn": {"Value": {"Fn::GetAtt": ["Nightly", "Arn"]}},
            "Group": {"Value": {"Ref": "Group"}},
        },
    }
    cfn = account.client("cloudformation")
    cfn.create_stack(StackName="schedules", TemplateBody=json.dumps(template))
    created = settled(cfn, "schedules")  # CloudFormation works in the background, as in AWS
    assert created["StackStatus"] == "CREATE_COMPLETE", created
    outputs = {o["OutputKey"]: o["OutputValue"] for o in created["Outputs"]}
    scheduler = account.client("scheduler")
    (listed,) = scheduler.list_schedules(GroupName=outputs["Group"])["Schedules"]
    assert listed["Arn"] == outputs["Arn"]
    account.clock.advance(2 * 3600 + 60)
    assert len(executions(account, machine)) == 1
    cfn.delete_stack(StackName="schedules")
    deleted(cfn, "schedules")
    assert scheduler.list_schedules(GroupName=outputs["Group"])["Schedules"] == []


def _fires_on_time_when_a_wait_jumps_past_it(account) -> None:
    machine = machines.create(account, PASS_MACHINE)
    when = virtual_now(account) + datetime.timedelta(minutes=30)
    schedule(account, at(when), {"Arn": machine, "RoleArn": scheduler_role(account)})
    settle()
    account.clock.sleep(3600)  # a waiter whose wake-up lies past the schedule's time
    settle()
    (started,) = [e["startDate"] for e in executions(account, machine)]
    assert abs((started - when).total_seconds()) < 60, (started, when)


BEHAVIOURS = [
    Behaviour(
        "scheduler-fires-on-time-when-time-jumps-past-it",
        f"{TYPES_PAGE} (one-time schedules run at the date and time given)",
        _fires_on_time_when_a_wait_jumps_past_it,
    ),
    Behaviour(
        "scheduler-invalid-expressions-refused",
        f"{TYPES_PAGE}; https://docs.aws.amazon.com/scheduler/latest/APIReference/"
        "API_CreateSchedule.html (ScheduleExpression)",
        _invalid_expressions_are_refused,
        aws=True,
    ),
    Behaviour(
        "scheduler-one-time-schedule-fires-then-deletes-itself",
        f"{TYPES_PAGE} (one-time schedules); https://docs.aws.amazon.com/scheduler/latest/"
        "APIReference/API_CreateSchedule.html (ActionAfterCompletion); "
        "https://docs.aws.amazon.com/scheduler/latest/UserGuide/"
        "managing-schedule-context-attributes.html",
        _one_time_schedule_fires_at_its_time_then_deletes_itself,
    ),
    Behaviour(
        "scheduler-rate-fires-at-once-then-every-period",
        f"{TYPES_PAGE} (rate-based: without a StartDate the schedule starts invoking at once)",
        _rate_fires_from_creation_then_every_period,
    ),
    Behaviour(
        "scheduler-cron-fires-at-the-local-time-of-its-time-zone",
        f"{TYPES_PAGE} (cron-based; time zones); https://docs.aws.amazon.com/scheduler/latest/"
        "UserGuide/managing-schedule-flexible-time-windows.html (OFF)",
        _cron_fires_at_the_local_time_of_its_time_zone,
    ),
    Behaviour(
        "scheduler-disabled-schedule-does-not-fire",
        "https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-state.html",
        _disabled_schedule_does_not_fire,
    ),
    Behaviour(
        "scheduler-role-it-cannot-assume-fires-nothing",
        "https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html "
        "(the execution role trusts scheduler.amazonaws.com)",
        _role_scheduler_cannot_assume_fires_nothing,
    ),
    Behaviour(
        "scheduler-function-target-invoked",
        "https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-templated.html",
        _function_target_is_invoked,
    ),
    Behaviour(
        "scheduler-universal-target-calls-the-api",
        "https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-universal.html",
        _universal_target_calls_the_api,
    ),
    Behaviour(
        "scheduler-missing-group-is-not-found",
        "https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html "
        "(ResourceNotFoundException)",
        _missing_group_is_not_found,
        aws=True,
    ),
    Behaviour(
        "scheduler-cloudformation-creates-schedules-that-fire",
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/"
        "aws-resource-scheduler-schedule.html",
        _cloudformation_creates_schedules_that_fire,
    ),
]


@rows(*BEHAVIOURS)
def test_scheduler_behaves_as_in_aws(account, behaviour):
    behaviour.check(account)


def test_valid_expressions_are_accepted(account):
    target = {"Arn": machines.create(account, PASS_MACHINE), "RoleArn": scheduler_role(account)}
    for expression in VALID:
        name = schedule(account, expression, target, State="DISABLED")
        described = account.client("scheduler").get_schedule(Name=name)
        assert described["ScheduleExpression"] == expression


@pytest.mark.parametrize("expression", VALID)
def test_every_valid_expression_has_a_next_time(expression):
    from localaws.schedule_expressions import parse, zone

    meaning = parse(expression)
    after = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC).timestamp()
    if hasattr(meaning, "moment"):
        assert meaning.moment(zone("UTC")) > after
    elif hasattr(meaning, "seconds"):
        assert meaning.next_after(after, after - 1) > after
    else:
        assert meaning.next_after(after, zone("UTC")) > after
