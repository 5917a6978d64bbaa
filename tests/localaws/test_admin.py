"""What a caller of the admin path (`python -m localaws faults|clock`) may run (localaws.admin)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from localaws import admin

CLOCK_CLOSED_TO_CALLERS = ("close", "sleep", "sleep_until", "holding", "wait_for")


def test_the_clock_only_advances_and_tells_the_time(account):
    assert sorted(admin.methods("clock")) == ["advance", "now", "time"]
    before = admin.call("clock", "time", {})
    admin.call("clock", "advance", {"seconds": 60})
    assert admin.call("clock", "time", {}) >= before + 60
    for method in CLOCK_CLOSED_TO_CALLERS:
        with pytest.raises(ValueError, match=f"clock has no method '{method}'"):
            admin.call("clock", method, {})


def test_close_over_http_is_refused_and_the_clock_keeps_running(account):
    request = SimpleNamespace(data=json.dumps({"target": "clock", "method": "close"}).encode())
    status, _, body = admin._handle(request, admin.PATH, {})
    assert status == 400
    assert "no method 'close'" in json.loads(body)["error"]
    admin.call("clock", "advance", {"seconds": 1})  # still usable


def test_fault_tables_offer_their_public_methods(account):
    assert {"throttle", "fail_next_solution_version", "slow_next"} <= set(
        admin.methods("personalize")
    )
    assert {"fail_next", "slow_next", "pending", "clear"} <= set(admin.methods("sagemaker"))
