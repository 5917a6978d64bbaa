"""The demo config's Personalize plan (recops.contracts) run through the steps as the state
machine will: entries in order, each with its references resolved from earlier outcomes, each
resource polled until it settles. A re-run of the execution creates nothing; a new execution
creates only what a run owns."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.datasets import synthetic_interactions
from lambdas.personalize import core, handlers
from localaws import LocalAccount
from recops import names
from recops.config import load_config
from recops.contracts import personalize_plan
from tests.conftest import DEMO_CONFIG
from tests.lambdas.personalize_world import BUCKET, PREFIX, ROLE, put_data, settle

ORDER = [  # (step, plan member): the order the plan's docstring gives
    ("datasetGroup", "datasetGroup"),
    ("schema", "schemas"),
    ("dataset", "datasets"),
    ("datasetImportJob", "imports"),
    ("filter", "filters"),
    ("eventTracker", "eventTracker"),
    ("solution", "solutions"),
    ("solutionVersion", "solutionVersions"),
    ("batchInferenceJob", "batchInferenceJobs"),
    ("campaign", "campaigns"),
    ("recommender", "recommenders"),
]


def entries(plan: dict, member: str) -> list[dict]:
    value = plan[member]
    return value if isinstance(value, list) else [value] if value else []


def walk(plan: dict, run_id: str, account) -> list[tuple[str, str, dict]]:
    """Every entry through its step; (step, key, outcome) in order."""
    client = core.personalize_client()
    refs = {"role:personalize": ROLE, "s3:batchInput": f"s3://{BUCKET}/batch/{run_id}/users.json"}
    put_data(account, f"batch/{run_id}/users.json", b'{"userId": "u1"}\n{"userId": "u2"}\n')
    done = []
    for step, member in ORDER:
        for entry in entries(plan, member):
            own = {}
            if "stem" in entry:
                own["run:name"] = names.run_owned(entry["stem"], run_id)
            if "file" in entry:
                own[f"s3:import:{entry['key']}"] = put_data(
                    account, f"runs/{run_id}/{entry['file']}", interactions_csv()
                )
            own[f"s3:batchOutput:{entry['key']}"] = f"s3://{BUCKET}/batch/{run_id}/{entry['key']}/"
            event = {"step": step, "entry": entry, "refs": {**refs, **own}}
            outcome = handlers.run_step(client, event, PREFIX)
            if step != "schema":
                assert settle(step, outcome) == "ACTIVE", (step, entry["key"])
            refs[f"arn:{step}:{entry['key']}"] = outcome["arn"]
            done.append((step, entry["key"], outcome))
    return done


def interactions_csv() -> bytes:
    """The demo schema's columns: USER_ID, ITEM_ID, TIMESTAMP, EVENT_VALUE."""
    frame = synthetic_interactions(n_users=120, n_items=80, n_interactions=3000, seed=4)
    columns = {"user_id": "USER_ID", "item_id": "ITEM_ID", "timestamp": "TIMESTAMP"}
    frame = frame.rename(columns={**columns, "rating": "EVENT_VALUE"})
    return frame[["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_VALUE"]].to_csv(index=False).encode()


@pytest.fixture(scope="module")
def runs():
    plan = personalize_plan(load_config(DEMO_CONFIG))
    with LocalAccount() as account:
        first = walk(plan, "aaaaaaaaaaaa", account)
        rerun = walk(plan, "aaaaaaaaaaaa", account)
        next_run = walk(plan, "bbbbbbbbbbbb", account)
        yield first, rerun, next_run


def test_the_first_run_creates_every_resource_of_the_plan(runs):
    first, _, _ = runs
    assert all(outcome["created"] for _, _, outcome in first)
    plan = personalize_plan(load_config(DEMO_CONFIG))
    wanted = {step: len(entries(plan, member)) for step, member in ORDER}
    assert Counter(step for step, _, _ in first) == +Counter(wanted)
    assert wanted["solutionVersion"] == 3  # the demo's three recipes


def test_a_rerun_of_the_execution_creates_nothing(runs):
    first, rerun, _ = runs
    assert [(s, k, o["arn"]) for s, k, o in rerun] == [(s, k, o["arn"]) for s, k, o in first]
    assert not any(outcome["created"] for _, _, outcome in rerun)


def test_a_new_execution_creates_only_what_a_run_owns(runs):
    first, _, next_run = runs
    created = {step for step, _, outcome in next_run if outcome["created"]}
    assert created == {"datasetImportJob", "solutionVersion", "batchInferenceJob"}
    before = {(s, k): o["arn"] for s, k, o in first}
    for step, key, outcome in next_run:
        assert (outcome["arn"] == before[step, key]) is (step not in created)


def test_a_reference_the_state_machine_did_not_resolve_is_named():
    plan = personalize_plan(load_config(DEMO_CONFIG))
    event = {"step": "dataset", "entry": plan["datasets"][0], "refs": {}}
    with pytest.raises(core.InvalidStepInputError, match="'arn:datasetGroup:main', not in refs"):
        handlers.run_step(object(), event, PREFIX)
