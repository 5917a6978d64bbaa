"""Step Functions errors carry the names AWS gives them, and Retry/Catch see them."""

from __future__ import annotations

import json
import re

from tests.localaws.fidelity import Behaviour, refused, rows
from tests.localaws.machines import (
    ROLE,
    caught,
    create,
    finished,
    history,
    run,
    task,
    with_catcher,
)

AWSSDK = "https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html"
ERRORS = "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html"
SAGEMAKER = "https://docs.aws.amazon.com/step-functions/latest/dg/connect-sagemaker.html"
SYNC = "https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-sync"
JSONATA = "https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html"
VARIABLES = "https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html"
MISSING_SCHEMA = "arn:aws:personalize:us-east-1:123456789012:schema/nope"
DESCRIBE_SCHEMA = "arn:aws:states:::aws-sdk:personalize:describeSchema"


def _error_output(result: dict) -> dict:
    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    return json.loads(result["output"])


def personalize_error_is_caught_by_its_aws_name(account):
    state = task(
        DESCRIBE_SCHEMA,
        {"SchemaArn": MISSING_SCHEMA},
        Catch=caught("Personalize.ResourceNotFoundException"),
        Next="Caught",
    )
    error = _error_output(run(account, with_catcher(state)))
    assert error["Error"] == "Personalize.ResourceNotFoundException"
    assert re.search(r"\(Service: Personalize, Status Code: \d+, Request ID: .+\)$", error["Cause"])


def personalize_error_is_caught_by_states_all(account):
    state = task(
        DESCRIBE_SCHEMA, {"SchemaArn": MISSING_SCHEMA}, Catch=caught("States.ALL"), Next="Caught"
    )
    assert _error_output(run(account, with_catcher(state)))["Error"].startswith("Personalize.")


def personalize_error_is_retried(account):
    account.client("personalize").create_dataset_group(name="taken")
    retry = [{"ErrorEquals": ["Personalize.ResourceAlreadyExistsException"], "MaxAttempts": 2}]
    retry[0] |= {"IntervalSeconds": 1, "BackoffRate": 1.0}
    state = task(
        "arn:aws:states:::aws-sdk:personalize:createDatasetGroup",
        {"Name": "taken"},
        Retry=retry,
        Catch=caught("States.ALL"),
        Next="Caught",
    )
    machine = create(account, with_catcher(state))
    sfn = account.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    assert finished(account, arn)["status"] == "SUCCEEDED"
    failures = [e for e in history(account, arn) if e["type"] == "TaskFailed"]
    assert [f["taskFailedEventDetails"]["error"] for f in failures] == [
        "Personalize.ResourceAlreadyExistsException"
    ] * 3


def s3_modelled_error_gets_the_exception_suffix(account):
    state = task("arn:aws:states:::aws-sdk:s3:getObject", {"Bucket": "nobucket", "Key": "k"})
    result = run(account, with_catcher(state))
    assert result["error"] == "S3.NoSuchBucketException"
    assert "(Service: S3, Status Code: 404" in result["cause"]


def unmodelled_error_is_the_sdk_generic_exception(account):
    # SageMaker answers a missing job with ValidationException, which its model does not declare
    state = task(
        "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob", {"TrainingJobName": "nojob"}
    )
    result = run(account, with_catcher(state))
    assert result["error"] == "SageMaker.SageMakerException"
    assert "(Service: SageMaker, Status Code: 400" in result["cause"]


def optimized_sagemaker_error_is_the_v1_sdk_exception(account):
    state = task(
        "arn:aws:states:::sagemaker:createEndpoint",
        {"EndpointName": "e", "EndpointConfigName": "nope"},
    )
    result = run(account, with_catcher(state))
    assert result["error"] == "SageMaker.AmazonSageMakerException"
    assert (
        "(Service: AmazonSageMaker; Status Code: 400; Error Code: ValidationException;"
        in (result["cause"])
    )


def states_all_does_not_catch_states_runtime(account):
    for catcher in ("States.ALL", "States.Runtime"):  # "will always cause the execution to fail"
        state = task(
            "arn:aws:states:::aws-sdk:s3:listBuckets",
            {"Prefix.$": "$.missing"},  # a field ListBuckets has; the path is what fails
            Catch=caught(catcher),
            Next="Caught",
        )
        result = run(account, with_catcher(state))
        assert result["status"] == "FAILED", catcher
        assert result["error"] == "States.Runtime"


def choice_without_match_is_no_choice_matched(account):
    definition = {
        "StartAt": "Pick",
        "States": {
            "Pick": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "One"}],
            },
            "One": {"Type": "Pass", "End": True},
        },
    }
    result = run(account, definition, {"n": 2})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.NoChoiceMatched"


def jsonata_error_is_query_evaluation_error_and_catchable(account):
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Try",
        "States": {
            "Try": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:listBuckets",
                "Arguments": {"Prefix": "{% $number('not a number') %}"},
                "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    assert _error_output(run(account, definition))["Error"] == "States.QueryEvaluationError"


def jsonata_error_outside_a_task_fails_the_execution(account):
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": "{% $number('x') %}", "End": True}},
    }
    result = run(account, definition)
    assert (result["status"], result["error"]) == ("FAILED", "States.QueryEvaluationError")


def jsonata_uuid_and_hash_return_values(account):
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "Output": {"id": "{% $uuid() %}", "sha": "{% $hash('abc', 'SHA-256') %}"},
                "End": True,
            }
        },
    }
    output = _error_output(run(account, definition))
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", output["id"]
    )
    assert output["sha"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def refused_jsonata_definition_leaves_the_parser_usable(account):
    sfn = account.client("stepfunctions")
    bad = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": {"a": 1}, "End": True}},
    }
    refused(
        lambda: sfn.create_state_machine(name="bad", definition=json.dumps(bad), roleArn=ROLE),
        "InvalidDefinition",
    )
    good = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": {"a.$": "$.x"}, "End": True}},
    }
    assert _error_output(run(account, good, {"x": 1})) == {"a": 1}
    branch = {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}
    nested = {
        "StartAt": "P",
        "States": {"P": {"Type": "Parallel", "Branches": [branch, branch], "End": True}},
    }
    assert _error_output(run(account, nested)) == [{}, {}]  # scopes of nested programs too


def _heartbeat_expiry_caught_by(account, catcher: str) -> str:
    """The error a task that misses its heartbeat raises, as a catcher on `catcher` sees it."""
    queue = account.client("sqs").create_queue(QueueName="tokens")["QueueUrl"]
    state = task(
        "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        HeartbeatSeconds=1,
        TimeoutSeconds=30,
        Catch=caught(catcher),
        Next="Caught",
    )
    return _error_output(run(account, with_catcher(state)))["Error"]


def heartbeat_expiry_is_heartbeat_timeout(account):
    assert _heartbeat_expiry_caught_by(account, "States.HeartbeatTimeout") == (
        "States.HeartbeatTimeout"
    )


def heartbeat_expiry_is_also_a_states_timeout(account):
    assert _heartbeat_expiry_caught_by(account, "States.Timeout") == "States.HeartbeatTimeout"


def jsonata_variables_keep_any_string_and_null(account):
    """Values bound to variables come back as they were: quotes, backslashes, newlines, null."""
    text = 'a "quoted" word\\with a backslash\nand a new line'
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Keep",
        "States": {
            "Keep": {
                "Type": "Pass",
                "Assign": {"text": "{% $states.input.text %}", "nothing": None},
                "Next": "Use",
            },
            "Use": {
                "Type": "Pass",
                "Output": {
                    "text": "{% $text %}",
                    "nullExists": "{% $exists($nothing) %}",
                    "nullType": "{% $type($nothing) %}",
                },
                "End": True,
            },
        },
    }
    output = _error_output(run(account, definition, {"text": text}))
    assert output == {"text": text, "nullExists": True, "nullType": "null"}


def jsonata_undefined_result_fails_naming_the_state(account):
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": "{% $states.input.missing %}", "End": True}},
    }
    result = run(account, definition, {"present": 1})
    assert (result["status"], result["error"]) == ("FAILED", "States.QueryEvaluationError")
    assert "returned nothing (undefined)" in result["cause"]


def map_item_is_for_the_item_selector_only(account):
    """ItemSelector reads $states.context.Map.Item; a state inside the iteration does not."""
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "Items": "{% [1, 2] %}",
                "ItemSelector": {"index": "{% $states.context.Map.Item.Index %}"},
                "ItemProcessor": {
                    "StartAt": "Inside",
                    "States": {
                        "Inside": {
                            "Type": "Pass",
                            "Output": {
                                "index": "{% $states.input.index %}",
                                "seen": "{% $exists($states.context.Map.Item) %}",
                            },
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    }
    output = _error_output(run(account, definition))
    assert output == [{"index": 0, "seen": False}, {"index": 1, "seen": False}]


@rows(
    Behaviour(
        "map-item-in-item-selector-only",
        "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html"
        "#contextobject-map",
        map_item_is_for_the_item_selector_only,
    ),
    Behaviour(
        "personalize-error-caught-by-name", AWSSDK, personalize_error_is_caught_by_its_aws_name
    ),
    Behaviour(
        "personalize-error-caught-by-states-all", ERRORS, personalize_error_is_caught_by_states_all
    ),
    Behaviour("personalize-error-retried", AWSSDK, personalize_error_is_retried),
    Behaviour("s3-error-exception-suffix", AWSSDK, s3_modelled_error_gets_the_exception_suffix),
    Behaviour(
        "unmodelled-error-generic-exception", AWSSDK, unmodelled_error_is_the_sdk_generic_exception
    ),
    Behaviour(
        "optimized-sagemaker-error", SAGEMAKER, optimized_sagemaker_error_is_the_v1_sdk_exception
    ),
    Behaviour("states-all-not-runtime", ERRORS, states_all_does_not_catch_states_runtime),
    Behaviour("no-choice-matched", ERRORS, choice_without_match_is_no_choice_matched),
    Behaviour(
        "jsonata-query-evaluation-error",
        ERRORS,
        jsonata_error_is_query_evaluation_error_and_catchable,
    ),
    Behaviour("jsonata-error-in-pass", ERRORS, jsonata_error_outside_a_task_fails_the_execution),
    Behaviour("jsonata-uuid-hash", JSONATA, jsonata_uuid_and_hash_return_values),
    Behaviour("jsonata-variables-as-values", VARIABLES, jsonata_variables_keep_any_string_and_null),
    Behaviour("jsonata-undefined-result", JSONATA, jsonata_undefined_result_fails_naming_the_state),
    Behaviour(
        "parser-scope-not-leaked", JSONATA, refused_jsonata_definition_leaves_the_parser_usable
    ),
    Behaviour("heartbeat-timeout-name", ERRORS, heartbeat_expiry_is_heartbeat_timeout),
    Behaviour("heartbeat-timeout-is-a-timeout", ERRORS, heartbeat_expiry_is_also_a_states_timeout),
)
def test_step_functions_errors(account, behaviour):
    behaviour.check(account)
