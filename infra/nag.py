"""Acknowledging cdk-nag findings one resource at a time.

cdk-nag 3 reports each wildcard as its own finding, `AwsSolutions-IAM5[Resource::<text>]`, and
matches acknowledgments by that exact id. Deriving the id from the statement we granted keeps
every acknowledgment tied to one named resource: a new wildcard is reported, not swallowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

MIN_REASON_LENGTH = 40


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Record why a finding is acceptable; a reason too short to explain anything is refused."""
    if len(reason) < MIN_REASON_LENGTH:
        raise ValueError(f"acknowledgment of {rule} needs a concrete reason, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_wildcards(
    construct: IConstruct, statements: Iterable[iam.PolicyStatement], reason: str
) -> list[str]:
    """Acknowledge AwsSolutions-IAM5 for each wildcard resource in these statements only."""
    return acknowledge_resources(
        construct, [r for statement in statements for r in statement.resources], reason
    )


def acknowledge_resources(
    construct: IConstruct, resources: Iterable[str], reason: str
) -> list[str]:
    """Acknowledge AwsSolutions-IAM5 for each wildcard among these resource ARNs (for grants
    that CDK's task constructs write themselves, so no statement of ours holds them)."""
    stack = Stack.of(construct)
    findings = sorted(
        {
            f"AwsSolutions-IAM5[Resource::{_nag_text(stack.resolve(resource))}]"
            for resource in resources
            if "*" in resource
        }
    )
    for finding in findings:
        acknowledge(construct, finding, reason)
    return findings


def _nag_text(value: Any) -> str:
    """Render a resolved CloudFormation value the way cdk-nag prints it in finding ids."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_nag_text(part) for part in parts)
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    raise ValueError(f"cannot name {value!r} as cdk-nag does")
