"""The fidelity suite's rows: one AWS behaviour each, with the page that documents it.

A row is a `Behaviour`: what AWS does, where AWS says so, and a `check(account)` that passes only
if the account behaves that way. `account` has `.client(service)`; in the local account it also
has `.clock` and `.faults`. Every row runs against the local account in `make test`. Rows marked
`aws=True` create only free resources (or make requests refused before anything bills) and delete
what they create: they also run against a real account with

    RECOPS_REAL_AWS=1 .venv/bin/python -m pytest -m aws tests/localaws

(not run from this repository's CI, which has no AWS account).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

REAL_AWS = os.environ.get("RECOPS_REAL_AWS") == "1"


@dataclass(frozen=True)
class Behaviour:
    id: str
    source: str  # the AWS documentation page that says so
    check: Callable[[Any], None]
    aws: bool = False  # safe to run against a real account

    def __str__(self) -> str:
        return self.id


def rows(*behaviours: Behaviour) -> pytest.MarkDecorator:
    """Parametrize a test over behaviours; the ones safe on a real account carry the aws mark."""
    params = [
        pytest.param(b, id=b.id, marks=[pytest.mark.aws] if b.aws else []) for b in behaviours
    ]
    return pytest.mark.parametrize("behaviour", params)


def until(account, probe: Callable[[], Any], done: Callable[[Any], bool], limit: int = 120) -> Any:
    """Poll like a workflow, a minute apart: virtual minutes locally, real ones on AWS."""
    import time

    for _ in range(limit):
        value = probe()
        if done(value):
            return value
        if account.clock is not None:
            account.clock.sleep(60)  # waits for local work (a job computing) too
        else:
            time.sleep(60)
    raise AssertionError(f"still not done after {limit} polls: {value!r}")


def refused(call: Callable[[], Any], code: str, *words: str) -> ClientError:
    """The call fails with this error code, and its message names every word given."""
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == code, f"expected {code}, got {error['Code']}: {error.get('Message')}"
    for word in words:
        assert word in error.get("Message", ""), f"{word!r} not in {error.get('Message')!r}"
    return caught.value
