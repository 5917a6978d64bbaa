"""Step Functions' service names (in `arn:aws:states:::aws-sdk:<name>:...`, `arn:aws:states:::<name>:...`
and Scheduler's universal targets) and the botocore services they stand for: one table.

Not a moto gap: the map was written three times (the definition check, the executor's error
names, Scheduler's universal targets) and the copies disagreed. Source: the "exception prefix"
column of https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html.
"""

from __future__ import annotations

import functools

import botocore.session

# Resource service name -> (botocore service, error prefix), for the services the product calls.
# Any other service: botocore's name without its hyphens, prefix capitalised.
AWS_SDK_SERVICES: dict[str, tuple[str, str]] = {
    "personalize": ("personalize", "Personalize"),
    "personalizeruntime": ("personalize-runtime", "PersonalizeRuntime"),
    "personalizeevents": ("personalize-events", "PersonalizeEvents"),
    "sagemaker": ("sagemaker", "SageMaker"),
    "s3": ("s3", "S3"),
    "sfn": ("stepfunctions", "Sfn"),
    "lambda": ("lambda", "Lambda"),
    "eventbridge": ("events", "EventBridge"),
    "scheduler": ("scheduler", "Scheduler"),
    "cloudwatchlogs": ("logs", "CloudWatchLogs"),
    "sns": ("sns", "Sns"),
    "sqs": ("sqs", "Sqs"),
    "dynamodb": ("dynamodb", "DynamoDb"),
    "iam": ("iam", "Iam"),
    "ssm": ("ssm", "Ssm"),
    "cloudformation": ("cloudformation", "CloudFormation"),
}
# Step Functions' own name for its optimized resources (arn:aws:states:::states:startExecution).
BOTO_NAMES = {name: boto for name, (boto, _) in AWS_SDK_SERVICES.items()} | {
    "states": "stepfunctions"
}


@functools.cache
def _botocore_services() -> dict[str, str]:
    """botocore's services by the name Step Functions would write (no hyphens)."""
    names = botocore.session.get_session().get_available_services()
    return {name.replace("-", ""): name for name in names}


def boto_service_name(resource_service: str) -> str:
    """The botocore service a Step Functions service name stands for (as written if unknown)."""
    lowered = resource_service.lower()
    return BOTO_NAMES.get(lowered) or _botocore_services().get(lowered, resource_service)


def is_botocore_service(name: str) -> bool:
    return name in _botocore_services().values()


def error_prefix(resource_service: str) -> str:
    """The `ServiceName` part of `ServiceName.ErrorName` for an aws-sdk resource's service."""
    known = AWS_SDK_SERVICES.get(resource_service.lower())
    return known[1] if known else resource_service[:1].upper() + resource_service[1:]
