"""Service rules that botocore's models do not carry: one small declarative table per rule.

Each module holds tables (with the AWS documentation page that states the rule next to each)
and `RULES`: which operations a check applies to. `check(request, params)` runs every rule of
the request's operation after the model's constraints have passed, and raises
`RequestRefusedError` with the error the service returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from localaws.validation import Request


@dataclass(frozen=True)
class Rule:
    operations: tuple[tuple[str, str], ...]  # (service, operation)
    source: str  # the AWS documentation page that states the rule
    check: Callable[[Request, dict], None]


def all_rules() -> list[Rule]:
    from localaws.rules import personalize, sagemaker, stepfunctions

    return [*personalize.RULES, *sagemaker.RULES, *stepfunctions.RULES]


def check(request: Request, params: dict) -> None:
    for rule in all_rules():
        if (request.service, request.operation) in rule.operations:
            rule.check(request, params)
