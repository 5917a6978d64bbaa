"""Which machine a run starts on (recops/workflow_choice.py): the rule of the issue 10 interfaces
for `recops start --workflow` and the upload trigger."""

from __future__ import annotations

import copy
import json

import pytest

from recops.config import ConfigError
from recops.workflow_choice import WorkflowError, choose
from tests.conftest import DEMO_CONFIG

DEMO = json.loads(DEMO_CONFIG.read_text())


def demo(personalize: bool | None = None, fm: bool | None = None) -> dict:
    raw = copy.deepcopy(DEMO)
    if personalize is not None:
        raw["personalize"]["enabled"] = personalize
    if fm is not None:
        raw["factorization_machines"]["enabled"] = fm
    return raw


@pytest.mark.parametrize(
    ("personalize", "fm", "machine"),
    [(True, True, "personalize"), (True, False, "personalize"), (False, True, "fm-knn")],
)
def test_auto_starts_personalize_when_enabled_else_fm_knn(personalize, fm, machine):
    raw = demo(personalize, fm)
    choice = choose(raw)
    assert (choice.machine, choice.raw, choice.rewritten) == (machine, raw, False)


def test_auto_with_neither_enabled_says_what_to_do():
    with pytest.raises(WorkflowError) as refused:
        choose(demo(False, False), source="mine.json")
    assert str(refused.value) == (
        "mine.json: personalize.enabled and factorization_machines.enabled are both false: "
        "nothing to run; enable one (or run FM → KNN alone: recops start --workflow fm-knn)"
    )


def test_personalize_turns_fm_off_in_the_runs_config():
    raw = demo(True, True)
    choice = choose(raw, "personalize")
    assert choice.machine == "personalize"
    assert choice.rewritten
    assert choice.raw["factorization_machines"]["enabled"] is False
    assert choice.config.factorization_machines.enabled is False
    assert raw["factorization_machines"]["enabled"] is True  # the caller's dict is left alone
    assert {**choice.raw, "factorization_machines": raw["factorization_machines"]} == raw


def test_both_turns_fm_on():
    choice = choose(demo(True, False), "both")
    assert (choice.machine, choice.rewritten) == ("personalize", True)
    assert choice.raw["factorization_machines"]["enabled"] is True
    assert not choose(demo(True, True), "both").rewritten


def test_a_missing_section_is_added_with_enabled_alone():
    raw = demo(True)
    del raw["factorization_machines"]  # enabled by default
    assert not choose(raw, "both").rewritten
    assert choose(raw, "personalize").raw["factorization_machines"] == {"enabled": False}


@pytest.mark.parametrize("workflow", ["both", "personalize"])
def test_a_personalize_workflow_needs_personalize_enabled(workflow):
    with pytest.raises(WorkflowError) as refused:
        choose(demo(False, True), workflow, source="mine.json")
    assert str(refused.value) == (
        f"mine.json: personalize.enabled is false, so --workflow {workflow} has no Personalize "
        "run to start: use --workflow fm-knn (or enable personalize)"
    )


def test_fm_knn_runs_the_config_as_given_and_prices_no_personalize():
    raw = demo(True, False)
    choice = choose(raw, "fm-knn")
    assert (choice.machine, choice.raw, choice.rewritten) == ("fm-knn", raw, False)
    runs = choice.what_runs()
    assert runs.personalize.enabled is False
    assert runs.factorization_machines.enabled is True


def test_fm_knn_checks_the_rules_of_an_enabled_fm():
    """A disabled FM skips the model's FM rules; the FM machine would run it all the same."""
    raw = demo(True, False)
    raw["factorization_machines"]["target"] = "regression"
    del raw["data"]["interactions"]["columns"]["event_value"]
    assert choose(raw).machine == "personalize"
    with pytest.raises(ConfigError) as refused:
        choose(raw, "fm-knn", source="mine.json")
    assert str(refused.value).startswith(
        "mine.json with factorization_machines.enabled true: 1 problem(s) in the pipeline config"
    )
    assert "factorization_machines.target 'regression' needs ratings" in str(refused.value)


def test_a_config_the_model_refuses_is_refused_whatever_the_workflow():
    raw = demo()
    raw["personalize"]["solutions"][0]["recipe"] = "aws-hrnn"
    for workflow in ("auto", "personalize", "fm-knn", "both"):
        with pytest.raises(ConfigError):
            choose(raw, workflow)
