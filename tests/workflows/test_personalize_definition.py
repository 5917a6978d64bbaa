"""Assertions on the Personalize state machine the stack synthesizes (not a hand-written copy)."""

from __future__ import annotations

import pytest

from tests.workflows.definitions import jsonata_expressions, machines, states

# Tasks on the failure path retry anything briefly and then end the run: they may not loop
# into the failure path that they are part of.
FAILURE_PATH = {
    "Failure: stop the child run",
    "Record the failure",
    "Failure: notify",
    "Failure: event",
}
THROTTLING = {
    "ThrottlingException",
    "Personalize.ThrottlingException",
    "Lambda.TooManyRequestsException",
}


@pytest.fixture(scope="module")
def definition(demo_assembly) -> dict:
    found = [d for k, d in machines(demo_assembly.template).items() if k.startswith("Personalize")]
    assert len(found) == 1
    return found[0]


def tasks(definition: dict) -> dict[str, dict]:
    return {name: state for name, state in states(definition) if state["Type"] == "Task"}


def test_every_task_retries_throttling_and_catches_everything(definition):
    found = tasks(definition)
    assert len(found) > 30
    for name, state in found.items():
        retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
        caught = {e for c in state.get("Catch", []) for e in c["ErrorEquals"]}
        assert "States.ALL" in caught, f"{name} has no Catch for States.ALL"
        if name in FAILURE_PATH:
            assert "States.ALL" in retried, name
        else:
            assert retried >= THROTTLING, f"{name} does not retry throttling: {sorted(retried)}"


def test_every_catch_outside_the_failure_path_records_the_failure(definition):
    for name, state in tasks(definition).items():
        if name in FAILURE_PATH:
            continue
        for catch in state["Catch"]:
            assert any(k.endswith("failure") for k in catch.get("Assign", {})), name


def test_every_poll_waits_and_is_bounded(definition):
    by_name = dict(states(definition))
    describes = [n for n, s in by_name.items() if n.endswith(" describe")]
    assert len(describes) >= 9
    for describe in describes:
        poll = describe.removesuffix(" describe")
        resource = by_name[describe]["Resource"]
        if poll == "FM → KNN: poll":  # the child FM → KNN run, polled to its end
            assert resource.endswith(":states:::aws-sdk:sfn:describeExecution")
        else:
            assert ":states:::aws-sdk:personalize:describe" in resource
        wait, choice = by_name[f"{poll} wait"], by_name[f"{poll} ready?"]
        assert wait["Type"] == "Wait"
        assert wait["Next"] == describe
        [wait_var] = [v for v in wait["Assign"] if v.endswith("pollWait")]
        assert f"${wait_var}" in wait["Seconds"]
        assert "$min" in wait["Assign"][wait_var]  # backoff, capped
        bound = choice["Choices"][0]
        assert "polls >=" in bound["Condition"], f"{poll} has no bound"
        gave_up = by_name[bound["Next"]]
        assert gave_up["Type"] == "Pass"  # sets $failure naming the resource
        [failure] = gave_up["Assign"].values()
        assert "is still" in failure
        assert "after" in failure


def test_no_lambda_runs_per_poll(definition):
    """A poll loop is Wait → Describe (aws-sdk) → Choice: no Lambda among them."""
    for name, state in states(definition):
        if name.endswith((" describe", " wait", " ready?")):
            assert "lambda" not in state.get("Resource", ""), name


def test_solutions_train_in_one_map_and_a_failure_stays_in_its_iteration(definition):
    solutions = definition["States"]["Solutions"]
    assert solutions["Type"] == "Map"
    assert solutions.get("MaxConcurrency", 0) == 0  # all recipes at once: wall-clock = slowest
    inner = solutions["ItemProcessor"]["States"]
    handler = inner["Solution: failed"]
    assert handler["Type"] == "Pass"
    assert "failed" in handler["Output"]
    for name, state in inner.items():
        if state["Type"] == "Task":
            assert {c["Next"] for c in state["Catch"]} == {"Solution: failed"}, name


def test_aws_sdk_calls_exist_in_the_botocore_models(definition):
    """Every aws-sdk Task names a real action (the local account refuses others at create)."""
    import botocore.session

    session = botocore.session.get_session()
    for name, state in tasks(definition).items():
        resource = state["Resource"]
        if ":aws-sdk:" not in resource:
            continue
        service, action = resource.split(":aws-sdk:")[1].split(":")
        model = session.get_service_model({"sfn": "stepfunctions"}.get(service, service))
        operations = {op[0].lower() + op[1:] for op in model.operation_names}
        assert action in operations, f"{name}: {service}:{action}"


def test_the_machine_logs_and_traces(demo_assembly):
    machine = next(
        r
        for r in demo_assembly.template["Resources"].values()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
    )
    properties = machine["Properties"]
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["Level"] == "ALL"


def test_eight_recipes_training_ten_hours_stay_far_below_the_history_limit(definition):
    """History is bounded by the polls: each is a Wait (2 events), an aws-sdk Task (5) and a
    Choice (2). Eight recipes whose versions train 10 hours and batch jobs run 1 hour, with the
    imports 2 hours, must stay well under Step Functions' 25,000 events."""
    from infra.workflows.core import LONG

    per_poll = 9
    per_recipe = per_poll * (LONG.polls_for(10 * 3600) + LONG.polls_for(3600)) + 60
    total = 8 * per_recipe + per_poll * LONG.polls_for(2 * 3600) + 500
    assert LONG.polls_for(10 * 3600) < 60
    assert total < 10_000, total


def test_iterations_read_their_item_from_their_input_not_the_context(definition):
    """AWS gives the context object's Map.Item to a Map's ItemSelector only
    (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html)."""
    import json

    def inner_states(machine: dict):
        for _, state in machine["States"].items():
            if "ItemProcessor" in state:
                yield from states(state["ItemProcessor"])

    inside = list(inner_states(definition))
    assert len(inside) > 40
    for name, state in inside:
        text = json.dumps({k: v for k, v in state.items() if k != "ItemProcessor"})
        assert "Map.Item" not in text, name


def test_run_owned_names_count_redrives_where_they_are_made(definition):
    """A redrive re-runs only the states that failed, so the suffix cannot be computed once."""
    import json

    text = json.dumps(definition)
    assert "RedriveCount" in text
    assert '"suffix"' not in text


def test_every_jsonata_expression_parses(definition):
    """A syntax error in an expression (a stray quote in a message) fails here, at synth,
    rather than at the end of a long run."""
    import jsonata

    found = list(jsonata_expressions(definition))
    assert len(found) > 200
    for expression in found:
        jsonata.Jsonata(expression)  # raises on a syntax error
