"""Requests AWS refuses: the service model's constraints, list paging, and the service rules the
model does not carry (localaws.validation, localaws.rules)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from localaws import validation
from localaws.rules import all_rules
from recops import images
from tests.localaws.cfn import resource_events, settled
from tests.localaws.fidelity import Behaviour, refused, rows, until
from tests.test_localaws_personalize import SCHEMA

ROLE = "arn:aws:iam::123456789012:role/localaws-validation"
REGION = "us-east-1"
FM = images.image_uri("factorization-machines", REGION)
KNN = images.image_uri("knn", REGION)
SKLEARN = images.image_uri("sagemaker-scikit-learn", REGION, "1.2-1")
INTERACTIONS = json.loads(SCHEMA)  # the suite's one Interactions schema
PASS = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}

PERSONALIZE_API = "https://docs.aws.amazon.com/personalize/latest/dg/API_{}.html"
SAGEMAKER_API = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_{}.html"
SFN_API = "https://docs.aws.amazon.com/step-functions/latest/apireference/API_{}.html"
CFN_STATE_MACHINE = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
    "aws-resource-stepfunctions-statemachine.html"
)
SFN_SAGEMAKER = "https://docs.aws.amazon.com/step-functions/latest/dg/connect-sagemaker.html"


def _active_group(account, name: str) -> str:
    p = account.client("personalize")
    arn = p.create_dataset_group(name=name)["datasetGroupArn"]
    until(
        account,
        lambda: p.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"]["status"],
        lambda status: status in ("ACTIVE", "CREATE FAILED"),
    )
    return arn


def _schema(p, name: str, fields: list[dict]) -> str:
    body = {**INTERACTIONS, "fields": fields}
    return p.create_schema(name=name, schema=json.dumps(body))["schemaArn"]


# --- Personalize: the model's constraints -------------------------------------------------------


def _name_too_long(account):
    refused(
        lambda: account.client("personalize").create_dataset_group(name="a" * 64),
        "InvalidInputException",
        "1 validation error detected",
        "at 'name' failed to satisfy constraint",
        "Member must have length less than or equal to 63",
    )


def _name_pattern(account):
    p = account.client("personalize")
    for name in ("with space", "with.dot", "naïve"):
        refused(
            lambda name=name: p.create_dataset_group(name=name),
            "InvalidInputException",
            f"Value '{name}' at 'name'",
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9][a-zA-Z0-9\\-_]*",
        )


def _domain_enum(account):
    refused(
        lambda: account.client("personalize").create_dataset_group(name="g", domain="RETAIL"),
        "InvalidInputException",
        "Value 'RETAIL' at 'domain'",
        "Member must satisfy enum value set: [ECOMMERCE, VIDEO_ON_DEMAND]",
    )


def _lists_page(account):
    p = account.client("personalize")
    made = [_schema(p, f"localaws-paging-{i}", INTERACTIONS["fields"]) for i in range(2)]
    try:
        first = p.list_schemas(maxResults=1)
        assert len(first["schemas"]) == 1
        assert "nextToken" in first
        second = p.list_schemas(maxResults=1, nextToken=first["nextToken"])
        assert len(second["schemas"]) == 1
        assert second["schemas"][0]["schemaArn"] != first["schemas"][0]["schemaArn"]
    finally:
        for arn in made:
            p.delete_schema(schemaArn=arn)


def _bad_next_token(account):
    refused(
        lambda: account.client("personalize").list_dataset_groups(nextToken="not-a-token"),
        "InvalidNextTokenException",
    )


# --- Personalize: the rules the model does not carry --------------------------------------------


def _invalid_avro(account):
    p = account.client("personalize")
    for schema in ("{not json", json.dumps({"type": "record", "name": "x", "fields": []})):
        refused(
            lambda schema=schema: p.create_schema(name="bad-avro", schema=schema),
            "InvalidInputException",
            "schema",
        )
    bad_type = {**INTERACTIONS, "fields": [{"name": "USER_ID", "type": "uuid"}]}
    refused(
        lambda: p.create_schema(name="bad-type", schema=json.dumps(bad_type)),
        "InvalidInputException",
        "USER_ID",
    )


def _interactions_need_user_id(account):
    p = account.client("personalize")
    group = _active_group(account, "needs-user-id")
    schema = _schema(p, "no-user-id", [f for f in INTERACTIONS["fields"] if f["name"] != "USER_ID"])
    refused(
        lambda: p.create_dataset(
            name="ds", datasetGroupArn=group, datasetType="Interactions", schemaArn=schema
        ),
        "InvalidInputException",
        "USER_ID",
    )


def _one_dataset_per_type(account):
    p = account.client("personalize")
    group = _active_group(account, "one-per-type")
    schema = _schema(p, "interactions", INTERACTIONS["fields"])
    p.create_dataset(name="a", datasetGroupArn=group, datasetType="Interactions", schemaArn=schema)
    refused(
        lambda: p.create_dataset(
            name="b", datasetGroupArn=group, datasetType="Interactions", schemaArn=schema
        ),
        "ResourceAlreadyExistsException",
        "Interactions",
    )


def _retired_recipe(account):
    p = account.client("personalize")
    group = _active_group(account, "retired-recipe")
    refused(
        lambda: p.create_solution(
            name="hrnn", datasetGroupArn=group, recipeArn="arn:aws:personalize:::recipe/aws-hrnn"
        ),
        "InvalidInputException",
        "aws-hrnn",
        "no longer available",
    )


# --- SageMaker ----------------------------------------------------------------------------------


def _training_job(sm, name: str, image: str = FM, hyperparameters: dict | None = None) -> None:
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters=hyperparameters
        or {"feature_dim": "3", "num_factors": "2", "predictor_type": "regressor"},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://no-bucket/train/"}
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": "s3://no-bucket/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


def _processing_job(sm, name: str, image: str = SKLEARN) -> None:
    sm.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={"ImageUri": image, "ContainerEntrypoint": ["python3", "-c", "pass"]},
        ProcessingResources={
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "VolumeSizeInGB": 1,
            }
        },
    )


def _transform_job(sm, name: str) -> None:
    sm.create_transform_job(
        TransformJobName=name,
        ModelName="knn-model",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://no/in/"}}
        },
        TransformOutput={"S3OutputPath": "s3://no/out/"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )


def _job_name_too_long(account):
    refused(
        lambda: _training_job(account.client("sagemaker"), "a" * 64),
        "ValidationException",
        "at 'trainingJobName' failed to satisfy constraint",
        "Member must have length less than or equal to 63",
    )


def _job_name_underscore(account):
    refused(
        lambda: _training_job(account.client("sagemaker"), "fm_job"),
        "ValidationException",
        "Value 'fm_job' at 'trainingJobName'",
        "Member must satisfy regular expression pattern",
    )


def _duplicate_training_job(account):
    sm = account.client("sagemaker")
    _training_job(sm, "same-name")
    refused(
        lambda: _training_job(sm, "same-name"),
        "ResourceInUse",
        "Training job names must be unique within an AWS account and region",
    )


def _duplicate_processing_job(account):
    sm = account.client("sagemaker")
    _processing_job(sm, "same-name")
    refused(lambda: _processing_job(sm, "same-name"), "ResourceInUse", "must be unique")


def _duplicate_transform_job(account):
    sm = account.client("sagemaker")
    sm.create_model(
        ModelName="knn-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": KNN, "ModelDataUrl": "s3://no/model.tar.gz"},
    )
    _transform_job(sm, "same-name")
    refused(lambda: _transform_job(sm, "same-name"), "ResourceInUse", "must be unique")


def _bare_image(account):
    refused(
        lambda: _training_job(account.client("sagemaker"), "bare-image", image="knn"),
        "ValidationException",
        "Invalid training image",
    )


def _image_from_another_registry(account):
    elsewhere = images.image_uri("factorization-machines", "us-west-2")
    sm = account.client("sagemaker")
    refused(
        lambda: _training_job(sm, "other-region", image=elsewhere),
        "ValidationException",
        "Access denied for repository: factorization-machines",
    )
    own_account = FM.replace(FM.split(".")[0], "123456789012")
    refused(
        lambda: _training_job(sm, "other-account", image=own_account),
        "ValidationException",
        "in registry ID: 123456789012",
    )
    refused(
        lambda: _processing_job(sm, "no-such-tag", image=SKLEARN.replace("1.2-1", "9.9-9")),
        "ValidationException",
        "sagemaker-scikit-learn",
    )


def _failed_training(account, name: str, image: str, hyperparameters: dict) -> str:
    sm = account.client("sagemaker")
    _training_job(sm, name, image=image, hyperparameters=hyperparameters)
    described = until(
        account,
        lambda: sm.describe_training_job(TrainingJobName=name),
        lambda d: d["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"),
    )
    assert described["TrainingJobStatus"] == "Failed", described["TrainingJobStatus"]
    return described["FailureReason"]


def _fm_unknown_hyperparameter(account):
    reason = _failed_training(
        account,
        "misspelt",
        FM,
        {"featuer_dim": "3", "num_factors": "2", "predictor_type": "regressor"},
    )
    assert reason == (
        "ClientError: Additional hyperparameters are not allowed ('featuer_dim' was unexpected) "
        "(caused by ValidationError)"
    )


def _fm_invalid_values(account):
    base = {"feature_dim": "3", "num_factors": "2", "predictor_type": "regressor"}
    for name, value in (("num_factors", "0"), ("predictor_type", "bogus"), ("epochs", "x")):
        reason = _failed_training(
            account, f"fm-{name.replace('_', '-')}", FM, {**base, name: value}
        )
        assert reason.startswith(f"ClientError: Hyperparameter {name}: "), reason


def _knn_invalid_values(account):
    base = {"feature_dim": "3", "k": "2", "predictor_type": "classifier", "sample_size": "10"}
    reason = _failed_training(account, "knn-bogus", KNN, {**base, "predictor_type": "bogus"})
    assert "predictor_type" in reason
    assert "'classifier', 'regressor'" in reason
    reason = _failed_training(account, "knn-missing", KNN, {"feature_dim": "3", "k": "2"})
    assert "'predictor_type', 'sample_size' which are required hyperparameter(s)" in reason


# --- Step Functions -----------------------------------------------------------------------------


def _create(account, definition: dict, name: str = "m"):
    return account.client("stepfunctions").create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=ROLE
    )


def _dangling_start_at(account):
    refused(
        lambda: _create(account, {**PASS, "StartAt": "Nope"}),
        "InvalidDefinition",
        "Invalid State Machine Definition:",
        "MISSING_TRANSITION_TARGET: Missing 'Next' target: Nope at /StartAt",
    )


def _missing_next(account):
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}
    refused(
        lambda: _create(account, definition),
        "InvalidDefinition",
        "Missing 'Next' target: B at /States/A/Next",
    )
    choice = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "BooleanEquals": True, "Next": "Done"}],
                "Default": "Gone",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    refused(
        lambda: _create(account, choice),
        "InvalidDefinition",
        "Missing 'Next' target: Gone at /States/C/Default",
    )


def _unknown_sdk_action(account):
    task = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:personalize:createDatasetGroupz",
                "Parameters": {"Name": "x"},
                "End": True,
            }
        },
    }
    refused(
        lambda: _create(account, task),
        "InvalidDefinition",
        "The resource provided arn:aws:states:::aws-sdk:personalize:createDatasetGroupz is not recognized",
    )


def _update_with_invalid_definition(account):
    sfn = account.client("stepfunctions")
    arn = _create(account, PASS, name="to-update")["stateMachineArn"]
    refused(
        lambda: sfn.update_state_machine(
            stateMachineArn=arn, definition=json.dumps({**PASS, "StartAt": "Nope"})
        ),
        "InvalidDefinition",
        "Missing 'Next' target: Nope",
    )


def _task(resource: str, **request) -> dict:
    return {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": resource, **request, "End": True}},
    }


def _misspelt_integration_field(account):
    training = _task(
        "arn:aws:states:::sagemaker:createTrainingJob.sync",
        Parameters={"TrainingJobName.$": "$.name", "HyperParameterz": {}, "RoleArn": ROLE},
    )
    refused(
        lambda: _create(account, training),
        "InvalidDefinition",
        'SCHEMA_VALIDATION_FAILED: The field "HyperParameterz" is not supported by Step '
        "Functions at /States/T/Parameters",
    )
    sdk = _task(  # aws-sdk fields are PascalCase even where the API is camelCase
        "arn:aws:states:::aws-sdk:personalize:createDatasetGroup", Parameters={"name": "g"}
    )
    refused(lambda: _create(account, sdk), "InvalidDefinition", 'The field "name"')
    jsonata = {
        **_task("arn:aws:states:::states:startExecution", Arguments={"StateMachineArnn": "x"}),
        "QueryLanguage": "JSONata",
    }
    refused(
        lambda: _create(account, jsonata),
        "InvalidDefinition",
        'The field "StateMachineArnn" is not supported by Step Functions at /States/T/Arguments',
    )
    accepted = _task(
        "arn:aws:states:::states:startExecution.sync:2",
        Parameters={
            "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:c",
            "Input.$": "$",
            "Name.$": "$.name",
        },
    )
    _create(account, accepted, name="well-formed")


def _stack_with_definition(cloudformation, stack: str, definition: dict, update: bool = False):
    body = json.dumps(
        {
            "Resources": {
                "Machine": {
                    "Type": "AWS::StepFunctions::StateMachine",
                    "Properties": {"DefinitionString": json.dumps(definition), "RoleArn": ROLE},
                }
            }
        }
    )
    operation = cloudformation.update_stack if update else cloudformation.create_stack
    operation(StackName=stack, TemplateBody=body)
    return settled(cloudformation, stack)


def _cloudformation_checks_the_definition(account):
    cloudformation = account.client("cloudformation")
    created = _stack_with_definition(cloudformation, "bad-machine", {**PASS, "StartAt": "Nope"})
    assert created["StackStatus"] == "ROLLBACK_COMPLETE", created["StackStatus"]
    failed = [e for e in resource_events(cloudformation, "bad-machine") if e[1] == "CREATE_FAILED"]
    assert [e[0] for e in failed] == ["Machine"], failed
    assert "Invalid State Machine Definition" in failed[0][2], failed
    assert "MISSING_TRANSITION_TARGET: Missing 'Next' target: Nope at /StartAt" in failed[0][2]
    good = _stack_with_definition(cloudformation, "machine", PASS)
    assert good["StackStatus"] == "CREATE_COMPLETE", good.get("StackStatusReason")
    updated = _stack_with_definition(
        cloudformation, "machine", {**PASS, "StartAt": "Gone"}, update=True
    )
    assert updated["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", updated["StackStatus"]
    failed = [e for e in resource_events(cloudformation, "machine") if e[1] == "UPDATE_FAILED"]
    assert [e[0] for e in failed] == ["Machine"], failed
    assert "Missing 'Next' target: Gone" in failed[0][2], failed
    (machine,) = account.client("stepfunctions").list_state_machines()["stateMachines"]
    described = account.client("stepfunctions").describe_state_machine(
        stateMachineArn=machine["stateMachineArn"]
    )
    assert json.loads(described["definition"]) == PASS


# --- EventBridge, Scheduler, Logs ---------------------------------------------------------------


def _rule_name_too_long(account):
    refused(
        lambda: account.client("events").put_rule(Name="r" * 65, ScheduleExpression="rate(1 day)"),
        "ValidationException",
        "at 'name' failed to satisfy constraint: Member must have length less than or equal to 64",
    )


def _schedule_name_too_long(account):
    refused(
        lambda: account.client("scheduler").create_schedule(
            Name="s" * 65,
            ScheduleExpression="rate(1 day)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": "arn:aws:sqs:us-east-1:123456789012:q", "RoleArn": ROLE},
        ),
        "ValidationException",
        "Member must have length less than or equal to 64",
    )


def _events_bad_token(account):
    refused(
        lambda: account.client("events").list_rules(NextToken="not-a-token"),
        "ValidationException",
    )


def _logs_bad_token(account):
    refused(
        lambda: account.client("logs").describe_log_groups(nextToken="not-a-token"),
        "InvalidParameterException",
    )


PERSONALIZE = [
    Behaviour(
        "personalize-name-max-63",
        PERSONALIZE_API.format("CreateDatasetGroup"),
        _name_too_long,
        aws=True,
    ),
    Behaviour(
        "personalize-name-pattern",
        PERSONALIZE_API.format("CreateDatasetGroup"),
        _name_pattern,
        aws=True,
    ),
    Behaviour(
        "personalize-domain-enum",
        PERSONALIZE_API.format("CreateDatasetGroup"),
        _domain_enum,
        aws=True,
    ),
    Behaviour(
        "personalize-lists-page", PERSONALIZE_API.format("ListSchemas"), _lists_page, aws=True
    ),
    Behaviour(
        "personalize-bad-next-token",
        PERSONALIZE_API.format("ListDatasetGroups"),
        _bad_next_token,
        aws=True,
    ),
    Behaviour(
        "personalize-schema-avro",
        "https://docs.aws.amazon.com/personalize/latest/dg/how-it-works-dataset-schema.html",
        _invalid_avro,
        aws=True,
    ),
    Behaviour(
        "personalize-interactions-need-user-id",
        "https://docs.aws.amazon.com/personalize/latest/dg/interactions-dataset-requirements.html",
        _interactions_need_user_id,
    ),
    Behaviour(
        "personalize-one-dataset-per-type",
        PERSONALIZE_API.format("CreateDataset"),
        _one_dataset_per_type,
    ),
    Behaviour(
        "personalize-hrnn-retired",
        "https://docs.aws.amazon.com/personalize/latest/dg/legacy-user-personalization-recipes.html",
        _retired_recipe,
    ),
]
SAGEMAKER = [
    Behaviour(
        "sagemaker-job-name-max-63",
        SAGEMAKER_API.format("CreateTrainingJob"),
        _job_name_too_long,
        aws=True,
    ),
    Behaviour(
        "sagemaker-job-name-pattern",
        SAGEMAKER_API.format("CreateTrainingJob"),
        _job_name_underscore,
        aws=True,
    ),
    Behaviour(
        "sagemaker-training-job-name-unique",
        SAGEMAKER_API.format("CreateTrainingJob"),
        _duplicate_training_job,
    ),
    Behaviour(
        "sagemaker-processing-job-name-unique",
        SAGEMAKER_API.format("CreateProcessingJob"),
        _duplicate_processing_job,
    ),
    Behaviour(
        "sagemaker-transform-job-name-unique",
        SAGEMAKER_API.format("CreateTransformJob"),
        _duplicate_transform_job,
    ),
    Behaviour(
        "sagemaker-image-is-an-ecr-path",
        SAGEMAKER_API.format("AlgorithmSpecification"),
        _bare_image,
    ),
    Behaviour(
        "sagemaker-builtin-image-registry",
        "https://docs.aws.amazon.com/sagemaker/latest/dg-ecr-paths/sagemaker-algo-docker-registry-paths.html",
        _image_from_another_registry,
    ),
    Behaviour(
        "fm-unknown-hyperparameter",
        "https://docs.aws.amazon.com/sagemaker/latest/dg/fact-machines-hyperparameters.html",
        _fm_unknown_hyperparameter,
    ),
    Behaviour(
        "fm-hyperparameter-values",
        "https://docs.aws.amazon.com/sagemaker/latest/dg/fact-machines-hyperparameters.html",
        _fm_invalid_values,
    ),
    Behaviour(
        "knn-hyperparameters",
        "https://docs.aws.amazon.com/sagemaker/latest/dg/kNN_hyperparameters.html",
        _knn_invalid_values,
    ),
]
STEP_FUNCTIONS = [
    Behaviour("sfn-start-at-exists", SFN_API.format("CreateStateMachine"), _dangling_start_at),
    Behaviour("sfn-next-exists", SFN_API.format("CreateStateMachine"), _missing_next),
    Behaviour(
        "sfn-aws-sdk-action-exists",
        "https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html",
        _unknown_sdk_action,
    ),
    Behaviour(
        "sfn-update-checks-definition",
        SFN_API.format("UpdateStateMachine"),
        _update_with_invalid_definition,
    ),
    Behaviour("sfn-integration-fields-exist", SFN_SAGEMAKER, _misspelt_integration_field),
    Behaviour(
        "cfn-state-machine-definition-checked",
        CFN_STATE_MACHINE,
        _cloudformation_checks_the_definition,
    ),
]
OTHERS = [
    Behaviour(
        "events-rule-name-max-64",
        "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html",
        _rule_name_too_long,
        aws=True,
    ),
    Behaviour(
        "scheduler-name-max-64",
        "https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html",
        _schedule_name_too_long,
        aws=True,
    ),
    Behaviour(
        "events-bad-next-token",
        "https://docs.aws.amazon.com/eventbridge/latest/APIReference/CommonErrors.html",
        _events_bad_token,
        aws=True,
    ),
    Behaviour(
        "logs-bad-next-token",
        "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogGroups.html",
        _logs_bad_token,
        aws=True,
    ),
]


@rows(*PERSONALIZE, *SAGEMAKER, *STEP_FUNCTIONS, *OTHERS)
def test_aws_refuses(behaviour, account):
    behaviour.check(account)


# --- the mechanism ------------------------------------------------------------------------------


def test_the_pinned_moto_still_accepts_what_the_model_refuses():
    with mock_aws():
        sm = boto3.client("sagemaker", region_name=REGION)
        _training_job(sm, "fm_job", image="knn")
        _training_job(sm, "fm_job", image="knn")  # and a duplicate silently replaces it
        sfn = boto3.client("stepfunctions", region_name=REGION)
        sfn.create_state_machine(
            name="m", definition=json.dumps({**PASS, "StartAt": "Nope"}), roleArn=ROLE
        )
        assert boto3.client("logs", region_name=REGION).describe_log_groups(nextToken="x")


def test_requests_that_skip_the_client_side_checks_are_checked_by_the_account(account):
    """What arrives over HTTP (CDK CLI, AWS CLI) is checked on the server side."""
    raw = boto3.client("sagemaker", region_name=REGION, config=Config(parameter_validation=False))
    refused(
        lambda: raw.list_training_jobs(MaxResults=0),
        "ValidationException",
        "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value "
        "greater than or equal to 1",
    )
    refused(
        lambda: raw.list_training_jobs(MaxResults="ten"),
        "SerializationException",
    )


def test_a_response_that_lacks_a_required_member_fails_loudly():
    with pytest.raises(validation.ResponseShapeError, match="TrainingJobName: required, missing"):
        validation.check_response("sagemaker", "DescribeTrainingJob", {"TrainingJobArn": "x"})
    with pytest.raises(validation.ResponseShapeError, match="str where the model has integer"):
        validation.check_response(
            "personalize", "DescribeCampaign", {"campaign": {"minProvisionedTPS": "1"}}
        )


def test_a_response_value_outside_its_enum_fails_loudly():
    described = {
        "TrainingJobName": "j",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/j",
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Sleeping",
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/k"},
        "ResourceConfig": {"VolumeSizeInGB": 1},
        "StoppingCondition": {},
        "CreationTime": 0,
    }
    with pytest.raises(validation.ResponseShapeError, match="SecondaryStatus: Value 'Sleeping'"):
        validation.check_response("sagemaker", "DescribeTrainingJob", described)
    validation.check_response(
        "sagemaker", "DescribeTrainingJob", {**described, "SecondaryStatus": "Completed"}
    )


def test_every_rule_names_its_aws_page():
    for rule in all_rules():
        assert rule.source.startswith("https://"), rule
        assert rule.operations, rule


def test_the_image_table_matches_the_sagemaker_package():
    assert images.table() == images.generate(), "run: python -m recops.images"
    assert images.image_uri("knn", "eu-west-1") == (
        "438346466558.dkr.ecr.eu-west-1.amazonaws.com/knn:1"
    )
