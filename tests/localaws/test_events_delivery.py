"""EventBridge rules deliver to state machines and functions; S3 puts its events on the bus."""

from __future__ import annotations

import json
import time
import uuid

from tests.localaws import cfn, functions, machines
from tests.localaws.fidelity import Behaviour, refused, rows

PASS_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
S3_PAGE = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventBridge.html"
TARGETS_PAGE = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html"


def events_role(account) -> str:
    """A role EventBridge can assume (its trust policy names events.amazonaws.com)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam = account.client("iam")
    name = f"events-{uuid.uuid4().hex[:8]}"
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def rule(account, pattern: dict, *targets: dict, **options) -> str:
    """A rule on the default bus with these targets (Ids given in order); its name."""
    name = f"rule-{uuid.uuid4().hex[:8]}"
    client = account.client("events")
    client.put_rule(Name=name, EventPattern=json.dumps(pattern), **options)
    client.put_targets(
        Rule=name, Targets=[{"Id": f"t{i}", **target} for i, target in enumerate(targets)]
    )
    return name


def executions(account, machine: str, expected: int = 1, wait: float = 10.0) -> list[dict]:
    """The machine's executions once `expected` exist (or after `wait` real seconds)."""
    sfn = account.client("stepfunctions")
    deadline = time.monotonic() + wait
    while True:
        found = sfn.list_executions(stateMachineArn=machine)["executions"]
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def execution_input(account, execution: dict) -> dict:
    described = account.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"]
    )
    return json.loads(described["input"])


def put_order_event(account, detail: dict | None = None) -> None:
    entry = {
        "Source": "recops.test",
        "DetailType": "Order Placed",
        "Detail": json.dumps(detail or {"key": "orders/1.json", "items": 3}),
    }
    (result,) = account.client("events").put_events(Entries=[entry])["Entries"]
    assert "EventId" in result, result


ORDERS = {"source": ["recops.test"], "detail-type": ["Order Placed"]}


# --- rows -------------------------------------------------------------------------------------------


def _s3_upload_starts_an_execution(account) -> None:
    bucket = f"uploads-{uuid.uuid4().hex[:8]}"
    s3 = account.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    machine = machines.create(account, PASS_MACHINE)
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": "in/"}]}},
    }
    rule(account, pattern, {"Arn": machine, "RoleArn": events_role(account)})
    s3.put_object(Bucket=bucket, Key="elsewhere/skip.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="in/config.json", Body=b'{"a": 1}')
    (execution,) = executions(account, machine)
    event = execution_input(account, execution)
    assert event["source"] == "aws.s3"
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["bucket"] == {"name": bucket}
    assert event["detail"]["object"]["key"] == "in/config.json"
    assert event["detail"]["object"]["size"] == 8
    assert "etag" in event["detail"]["object"]
    assert event["detail"]["reason"] == "PutObject"
    assert event["resources"] == [f"arn:aws:s3:::{bucket}"]
    assert event["time"].endswith("Z")


def _stack_bucket_with_eventbridge_enabled_sends_its_events(account) -> None:
    """NotificationConfiguration.EventBridgeConfiguration in a template turns the events on."""
    template = {
        "Resources": {
            "Uploads": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "NotificationConfiguration": {
                        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
                    }
                },
            }
        },
        "Outputs": {"Name": {"Value": {"Ref": "Uploads"}}},
    }
    cloudformation = account.client("cloudformation")
    stack_id = cloudformation.create_stack(
        StackName=f"uploads-{uuid.uuid4().hex[:6]}", TemplateBody=json.dumps(template)
    )["StackId"]
    stack = cfn.settled(cloudformation, stack_id)
    bucket = stack["Outputs"][0]["OutputValue"]
    s3 = account.client("s3")
    assert "EventBridgeConfiguration" in s3.get_bucket_notification_configuration(Bucket=bucket)
    machine = machines.create(account, PASS_MACHINE)
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}},
    }
    rule(account, pattern, {"Arn": machine, "RoleArn": events_role(account)})
    s3.put_object(Bucket=bucket, Key="train/config.json", Body=b"{}")
    (execution,) = executions(account, machine)
    assert execution_input(account, execution)["detail"]["object"]["key"] == "train/config.json"


def _put_events_starts_an_execution_with_the_event(account) -> None:
    machine = machines.create(account, PASS_MACHINE)
    rule(account, ORDERS, {"Arn": machine, "RoleArn": events_role(account)})
    put_order_event(account)
    (execution,) = executions(account, machine)
    event = execution_input(account, execution)
    assert event["detail"] == {"key": "orders/1.json", "items": 3}
    assert event["detail-type"] == "Order Placed"
    assert set(event) >= {"version", "id", "source", "account", "time", "region", "resources"}


def _target_input_settings_shape_the_input(account) -> None:
    role = events_role(account)
    constant, path, template = (machines.create(account, PASS_MACHINE) for _ in range(3))
    transformer = {
        "InputPathsMap": {"key": "$.detail.key", "count": "$.detail.items"},
        "InputTemplate": '{"object": <key>, "count": <count>, "why": "rule <aws.events.rule-name>"}',
    }
    name = rule(
        account,
        ORDERS,
        {"Arn": constant, "RoleArn": role, "Input": '{"fixed": true}'},
        {"Arn": path, "RoleArn": role, "InputPath": "$.detail"},
        {"Arn": template, "RoleArn": role, "InputTransformer": transformer},
    )
    put_order_event(account)
    assert execution_input(account, executions(account, constant)[0]) == {"fixed": True}
    assert execution_input(account, executions(account, path)[0]) == {
        "key": "orders/1.json",
        "items": 3,
    }
    assert execution_input(account, executions(account, template)[0]) == {
        "object": "orders/1.json",
        "count": 3,
        "why": f"rule {name}",
    }


def _a_failing_target_stops_no_other(account) -> None:
    role = events_role(account)
    first, second = machines.create(account, PASS_MACHINE), machines.create(account, PASS_MACHINE)
    missing = first.rsplit(":", 1)[0] + ":no-such-machine"
    rule(account, ORDERS, {"Arn": missing, "RoleArn": role}, {"Arn": first, "RoleArn": role})
    rule(account, ORDERS, {"Arn": second, "RoleArn": role})
    put_order_event(account)
    assert len(executions(account, first)) == 1
    assert len(executions(account, second)) == 1


def _dead_letter_queue_receives_what_failed(account) -> None:
    sqs = account.client("sqs")
    queue = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    machine = machines.create(account, PASS_MACHINE)
    missing = machine.rsplit(":", 1)[0] + ":no-such-machine"
    name = rule(
        account,
        ORDERS,
        {"Arn": missing, "RoleArn": events_role(account), "DeadLetterConfig": {"Arn": queue_arn}},
    )
    put_order_event(account)
    deadline, messages = time.monotonic() + 10, []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=queue, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        time.sleep(0.05)
    (message,) = messages
    assert json.loads(message["Body"])["detail-type"] == "Order Placed"
    attributes = message["MessageAttributes"]
    assert attributes["TARGET_ARN"]["StringValue"] == missing
    assert attributes["RULE_ARN"]["StringValue"].endswith(f"rule/{name}")
    assert "ERROR_CODE" in attributes


def _state_machine_target_needs_a_role(account) -> None:
    client = account.client("events")
    name = f"rule-{uuid.uuid4().hex[:8]}"
    client.put_rule(Name=name, EventPattern=json.dumps(ORDERS), State="DISABLED")
    identity = account.client("sts").get_caller_identity()
    region = client.meta.region_name
    machine = f"arn:aws:states:{region}:{identity['Account']}:stateMachine:never-created"
    try:
        refused(
            lambda: client.put_targets(Rule=name, Targets=[{"Id": "1", "Arn": machine}]),
            "ValidationException",
            "RoleArn is required for target",
        )
    finally:
        client.delete_rule(Name=name)


def _disabled_rule_delivers_nothing(account) -> None:
    enabled, disabled = (
        machines.create(account, PASS_MACHINE),
        machines.create(account, PASS_MACHINE),
    )
    role = events_role(account)
    rule(account, ORDERS, {"Arn": enabled, "RoleArn": role})
    rule(account, ORDERS, {"Arn": disabled, "RoleArn": role}, State="DISABLED")
    put_order_event(account)
    assert len(executions(account, enabled)) == 1
    assert executions(account, disabled, wait=0.3) == []


def _role_events_cannot_assume_delivers_nothing(account) -> None:
    trusted, untrusted = (
        machines.create(account, PASS_MACHINE),
        machines.create(account, PASS_MACHINE),
    )
    rule(
        account,
        ORDERS,
        {"Arn": trusted, "RoleArn": events_role(account)},
        {"Arn": untrusted, "RoleArn": functions.role(account)},  # trusts lambda.amazonaws.com
    )
    put_order_event(account)
    assert len(executions(account, trusted)) == 1
    assert executions(account, untrusted, wait=0.3) == []


LOGGING_HANDLER = """
def handler(event, context):
    print("received", event["detail-type"], event["detail"]["key"])
"""


def _function_target_is_invoked_when_permitted(account) -> None:
    lam = account.client("lambda")
    allowed = functions.create(account, LOGGING_HANDLER)
    denied = functions.create(account, LOGGING_HANDLER)
    name = rule(account, ORDERS, {"Arn": allowed}, {"Arn": denied})
    rule_arn = account.client("events").describe_rule(Name=name)["Arn"]
    lam.add_permission(
        FunctionName=allowed,
        StatementId="events",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rule_arn,
    )
    put_order_event(account)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "received Order Placed orders/1.json" in _logs(account, allowed):
            break
        time.sleep(0.1)
    assert "received Order Placed orders/1.json" in _logs(account, allowed)
    assert "received" not in _logs(account, denied)


def _logs(account, function_arn: str) -> str:
    try:
        return functions.log_text(account, function_arn.rsplit(":", 1)[-1])
    except account.client("logs").exceptions.ResourceNotFoundException:
        return ""


BEHAVIOURS = [
    Behaviour(
        "events-s3-upload-starts-an-execution",
        f"{S3_PAGE}; https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html "
        "(the Object Created event structure)",
        _s3_upload_starts_an_execution,
    ),
    Behaviour(
        "events-stack-bucket-eventbridge-enabled",
        f"{S3_PAGE}; https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
        "aws-properties-s3-bucket-eventbridgeconfiguration.html",
        _stack_bucket_with_eventbridge_enabled_sends_its_events,
    ),
    Behaviour(
        "events-put-events-starts-an-execution-with-the-event",
        f"{TARGETS_PAGE} (Step Functions state machine targets)",
        _put_events_starts_an_execution_with_the_event,
    ),
    Behaviour(
        "events-target-input-input-path-and-transformer",
        "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_Target.html; "
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html",
        _target_input_settings_shape_the_input,
    ),
    Behaviour(
        "events-a-failing-target-stops-no-other",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html "
        "(delivery is per target; an undelivered event is retried or dead-lettered)",
        _a_failing_target_stops_no_other,
    ),
    Behaviour(
        "events-dead-letter-queue-receives-what-failed",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html",
        _dead_letter_queue_receives_what_failed,
    ),
    Behaviour(
        "events-state-machine-target-needs-a-role-arn",
        f"{TARGETS_PAGE} (Step Functions targets: EventBridge uses the RoleArn in PutTargets)",
        _state_machine_target_needs_a_role,
        aws=True,
    ),
    Behaviour(
        "events-disabled-rule-delivers-nothing",
        "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html (State)",
        _disabled_rule_delivers_nothing,
    ),
    Behaviour(
        "events-role-events-cannot-assume-delivers-nothing",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html "
        "(the target role must trust events.amazonaws.com)",
        _role_events_cannot_assume_delivers_nothing,
    ),
    Behaviour(
        "events-function-target-invoked-when-its-policy-allows",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html "
        "(Lambda permissions); https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html",
        _function_target_is_invoked_when_permitted,
    ),
]


@rows(*BEHAVIOURS)
def test_eventbridge_behaves_as_in_aws(account, behaviour):
    behaviour.check(account)
