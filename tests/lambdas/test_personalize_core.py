"""The describe-or-create contract against the local Personalize: races, configurations that
differ, every status, throttling, and plan entries refused before any call."""

from __future__ import annotations

import json

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from lambdas.personalize import core, handlers, recipes, schemas
from localaws import LocalAccount
from localaws.personalize import backend_for
from tests.lambdas.personalize_world import (
    FAMILIES,
    PREFIX,
    ROLE,
    active_group,
    active_version,
    avro,
    group_with_interactions,
    put_data,
    run,
    settle,
)


@pytest.fixture
def account():
    with LocalAccount() as local:
        yield local


class RacingClient:
    """A client that lets another execution create the same resource just before our Create."""

    def __init__(self, client, rival_params: dict | None = None) -> None:
        self._client, self._rival, self.raced = client, rival_params, False

    def __getattr__(self, name: str):
        method = getattr(self._client, name)
        if not name.startswith("create_") or self.raced:
            return method

        def create(**params):
            self.raced = True
            method(**{**params, **(self._rival or {})})  # the other execution wins the race
            return method(**params)

        return create


def step_with(client, step: str, name: str, params: dict | None = None, **parents) -> dict:
    return handlers.STEPS[step](client, {"name": name, "params": params or {}, **parents}, PREFIX)


# --- races --------------------------------------------------------------------------------------


def test_a_lost_race_resolves_to_the_winner_found_by_arn(account):
    racing = RacingClient(core.personalize_client())
    result = step_with(racing, "datasetGroup", "g")
    assert racing.raced
    assert result == {
        "arn": f"{PREFIX}:dataset-group/g",
        "status": "CREATE PENDING",
        "created": False,
    }


def test_a_lost_race_resolves_to_the_winner_found_by_listing(account):
    group = active_group()
    schema = run("schema", "s", {"schema": avro("INTERACTIONS")})["arn"]
    racing = RacingClient(core.personalize_client())
    params = {"datasetType": "INTERACTIONS"}
    result = step_with(racing, "dataset", "d", params, datasetGroupArn=group, schemaArn=schema)
    assert racing.raced
    assert result["created"] is False
    assert (
        result["arn"] == run("dataset", "d", params, datasetGroupArn=group, schemaArn=schema)["arn"]
    )


def test_a_lost_race_for_a_solution_version_finds_it_among_the_versions(account):
    parents = group_with_interactions(account)
    version = active_version(parents["datasetGroupArn"])  # an older version, named pop-x1
    racing = RacingClient(core.personalize_client())
    result = step_with(racing, "solutionVersion", "pop-x2", solutionArn=version["solutionArn"])
    assert racing.raced
    assert result["created"] is False
    assert result["arn"] != version["solutionVersionArn"]
    described = core.describe(core.personalize_client(), FAMILIES["solutionVersion"], result["arn"])
    assert described["name"] == "pop-x2"


def test_a_lost_race_against_another_configuration_is_a_mismatch(account):
    racing = RacingClient(core.personalize_client(), rival_params={"domain": "ECOMMERCE"})
    with pytest.raises(
        core.ConfigurationMismatchError, match='domain is "ECOMMERCE", asked \\(none\\)'
    ):
        step_with(racing, "datasetGroup", "g")


def test_an_existing_dataset_of_the_type_under_another_name_is_the_service_error(account):
    group = active_group()
    schema = run("schema", "s", {"schema": avro("INTERACTIONS")})["arn"]
    params = {"datasetType": "INTERACTIONS"}
    run("dataset", "first", params, datasetGroupArn=group, schemaArn=schema)
    client = core.personalize_client()
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException, match="one dataset"):
        step_with(client, "dataset", "second", params, datasetGroupArn=group, schemaArn=schema)


def test_an_arn_built_wrong_still_finds_the_resource_by_listing(account):
    run("datasetGroup", "g")
    elsewhere = "arn:aws:personalize:us-east-1:999999999999"  # Describe misses, Create collides
    result = handlers.STEPS["datasetGroup"](core.personalize_client(), {"name": "g"}, elsewhere)
    assert result["created"] is False
    assert result["arn"] == f"{PREFIX}:dataset-group/g"


# --- a different configuration ------------------------------------------------------------------


def test_a_solution_with_another_recipe_names_the_field_and_both_values(account):
    group = active_group()
    run("solution", "recops-similar", {"recipeArn": "aws-sims"}, datasetGroupArn=group)
    with pytest.raises(core.ConfigurationMismatchError) as caught:
        run("solution", "recops-similar", {"recipeArn": "aws-similar-items"}, datasetGroupArn=group)
    message = str(caught.value)
    assert message.startswith(f"solution recops-similar ({PREFIX}:solution/recops-similar) exists")
    assert (
        'recipeArn is "arn:aws:personalize:::recipe/aws-sims", '
        'asked "arn:aws:personalize:::recipe/aws-similar-items"'
    ) in message
    assert "Delete it, or give this configuration another name." in message


def test_a_dataset_with_another_schema_names_the_field_and_both_values(account):
    group = active_group()
    old = run("schema", "interactions-aaaa", {"schema": avro("INTERACTIONS")})["arn"]
    new = run(
        "schema", "interactions-bbbb", {"schema": avro("INTERACTIONS", [("EVENT_TYPE", "string")])}
    )["arn"]
    params = {"datasetType": "INTERACTIONS"}
    run("dataset", "interactions", params, datasetGroupArn=group, schemaArn=old)
    with pytest.raises(core.ConfigurationMismatchError) as caught:
        run("dataset", "interactions", params, datasetGroupArn=group, schemaArn=new)
    assert f'schemaArn is "{old}", asked "{new}"' in str(caught.value)


def test_a_schema_with_other_content_under_the_same_name_is_a_mismatch(account):
    run("schema", "s", {"schema": avro("USERS")})
    with pytest.raises(core.ConfigurationMismatchError, match="schema is"):
        run("schema", "s", {"schema": avro("USERS", [("GENDER", "string")])})


@pytest.mark.parametrize(
    ("field", "asked"),
    [("performAutoTraining", True), ("performHPO", True), ("eventType", "click")],
)
def test_solution_options_that_differ_are_mismatches(account, field, asked):
    group = active_group()
    run("solution", "s", {"recipeArn": "aws-user-personalization-v2"}, datasetGroupArn=group)
    params = {"recipeArn": "aws-user-personalization-v2", field: asked}
    with pytest.raises(core.ConfigurationMismatchError, match=f"{field} is "):
        run("solution", "s", params, datasetGroupArn=group)


def test_an_import_job_name_reused_for_another_location_is_a_mismatch(account):
    parents = group_with_interactions(account)
    other = put_data(account, "elsewhere.csv", b"USER_ID,ITEM_ID,TIMESTAMP\n1,2,3\n")
    with pytest.raises(core.ConfigurationMismatchError, match="dataSource is"):
        run(
            "datasetImportJob",
            "g-import-x1",
            {"dataSource": {"dataLocation": other}, "roleArn": ROLE},
            datasetArn=parents["datasetArn"],
        )


def test_what_the_service_fills_in_or_spells_otherwise_is_no_difference(account):
    group = active_group()
    text = json.dumps(avro("INTERACTIONS"), indent=4, sort_keys=True)  # other spacing, key order
    schema = run("schema", "s", {"schema": text})
    assert run("schema", "s", {"schema": avro("INTERACTIONS")})["created"] is False
    params = {"datasetType": "Interactions"}
    run("dataset", "d", params, datasetGroupArn=group, schemaArn=schema["arn"])
    again = {"datasetType": "INTERACTIONS"}
    assert (
        run("dataset", "d", again, datasetGroupArn=group, schemaArn=schema["arn"])["created"]
        is False
    )
    full_arn = {"recipeArn": "arn:aws:personalize:::recipe/aws-sims", "performHPO": False}
    run("solution", "sims", full_arn, datasetGroupArn=group)
    short = {"recipeArn": "aws-sims", "performAutoML": False}  # omitted by nobody, still default
    assert run("solution", "sims", short, datasetGroupArn=group)["created"] is False


def test_an_existing_campaign_takes_the_new_solution_version_in_place(account):
    parents = group_with_interactions(account)
    first = active_version(parents["datasetGroupArn"])
    campaign = run("campaign", "serve", solutionVersionArn=first["solutionVersionArn"])
    assert settle("campaign", campaign) == "ACTIVE"
    client = core.personalize_client()
    second = run("solutionVersion", "pop-x2", solutionArn=first["solutionArn"])
    assert settle("solutionVersion", second) == "ACTIVE"
    updated = run("campaign", "serve", {"minProvisionedTPS": 2}, solutionVersionArn=second["arn"])
    assert updated["created"] is False
    assert updated["updated"] is True
    assert updated["arn"] == campaign["arn"]
    assert updated["status"] == "CREATE PENDING"  # the update's own lifecycle
    during = run("campaign", "serve", {"minProvisionedTPS": 2}, solutionVersionArn=second["arn"])
    assert (during["updated"], during["status"]) == (True, "CREATE PENDING")  # no second update
    account.clock.advance(3600)
    described = core.describe(client, FAMILIES["campaign"], campaign["arn"])
    assert described["solutionVersionArn"] == second["arn"]
    assert described["minProvisionedTPS"] == 2
    again = run("campaign", "serve", {"minProvisionedTPS": 2}, solutionVersionArn=second["arn"])
    assert "updated" not in again


# --- statuses -----------------------------------------------------------------------------------


def test_each_lifecycle_status_is_what_the_step_returns(account):
    seen = []
    for _ in range(6):
        seen.append(run("datasetGroup", "g")["status"])
        account.clock.advance(15)
    assert seen[0] == "CREATE PENDING"
    assert "CREATE IN_PROGRESS" in seen
    assert seen[-1] == "ACTIVE"
    core.call(
        core.personalize_client(),
        "DeleteDatasetGroup",
        {"datasetGroupArn": f"{PREFIX}:dataset-group/g"},
    )
    assert run("datasetGroup", "g")["status"] == "DELETE PENDING"


def test_a_failed_solution_version_reports_its_reason(account):
    parents = group_with_interactions(account)
    solution = run(
        "solution",
        "pop",
        {"recipeArn": "aws-popularity-count"},
        **{"datasetGroupArn": parents["datasetGroupArn"]},
    )
    settle("solution", solution)
    backend_for().faults.fail_next_solution_version("injected: out of capacity")
    version = run("solutionVersion", "pop-x1", solutionArn=solution["arn"])
    assert settle("solutionVersion", version) == "CREATE FAILED"
    again = run("solutionVersion", "pop-x1", solutionArn=solution["arn"])
    assert again == {
        "arn": version["arn"],
        "status": "CREATE FAILED",
        "created": False,
        "failureReason": "injected: out of capacity",
    }


def test_a_failed_import_reports_the_service_reason(account):
    group = active_group()
    schema = run("schema", "s", {"schema": avro("INTERACTIONS")})
    dataset = run(
        "dataset",
        "d",
        {"datasetType": "INTERACTIONS"},
        datasetGroupArn=group,
        schemaArn=schema["arn"],
    )
    settle("dataset", dataset)
    location = put_data(account, "bad.csv", b"USER_ID,ITEM_ID\n1,2\n")
    params = {"dataSource": {"dataLocation": location}, "roleArn": ROLE}
    job = run("datasetImportJob", "bad-x1", params, datasetArn=dataset["arn"])
    assert settle("datasetImportJob", job) == "CREATE FAILED"
    failed = run("datasetImportJob", "bad-x1", params, datasetArn=dataset["arn"])
    assert failed["status"] == "CREATE FAILED"
    assert "TIMESTAMP" in failed["failureReason"]


def test_a_parent_not_active_yet_is_resource_in_use_for_the_state_machine_to_retry(account):
    group = run("datasetGroup", "g")["arn"]
    client = core.personalize_client()
    with pytest.raises(client.exceptions.ResourceInUseException) as caught:
        step_with(
            client,
            "filter",
            "f",
            {"filterExpression": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("x")'},
            datasetGroupArn=group,
        )
    assert type(caught.value).__name__ == "ResourceInUseException"  # the Lambda's errorType


def test_metrics_of_a_version_still_training_are_resource_in_use(account):
    parents = group_with_interactions(account)
    solution = run(
        "solution",
        "pop",
        {"recipeArn": "aws-popularity-count"},
        datasetGroupArn=parents["datasetGroupArn"],
    )
    settle("solution", solution)
    version = run("solutionVersion", "pop-x1", solutionArn=solution["arn"])
    client = core.personalize_client()
    with pytest.raises(client.exceptions.ResourceInUseException):
        handlers.STEPS["solutionMetrics"](client, {"solutionVersionArn": version["arn"]})


# --- throttling ---------------------------------------------------------------------------------


def test_throttling_is_absorbed_by_the_standard_retries(account):
    backend_for().faults.throttle(2)
    result = run("datasetGroup", "g")
    assert result["created"] is True
    assert backend_for().faults.throttle_next == 0


def test_throttling_past_the_retries_reaches_the_state_machine_by_its_code(account):
    backend_for().faults.throttle(5)
    client = core.personalize_client(config=Config(retries={"mode": "standard", "max_attempts": 2}))
    with pytest.raises(ClientError) as caught:
        step_with(client, "datasetGroup", "g")
    named = handlers.named_after_code(caught.value)
    assert type(named).__name__ == "ThrottlingException"
    assert isinstance(named, ClientError)
    modeled = client.exceptions.ResourceInUseException(
        {"Error": {"Code": "ResourceInUseException"}}, "X"
    )
    assert handlers.named_after_code(modeled) is modeled


def test_the_client_retries_in_standard_mode():
    assert core.RETRIES["mode"] == "standard"
    assert core.RETRIES["total_max_attempts"] >= 5
    core.personalize_client(region_name="us-east-1")
    assert core.RETRIES["total_max_attempts"] >= 5  # not rewritten by botocore


# --- plan entries refused before any call ------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "event", "error", "words"),
    [
        ("datasetGroup", {"name": "x" * 64}, core.InvalidStepInputError, "1 to 63 characters"),
        ("datasetGroup", {"name": "-dash-first"}, core.InvalidStepInputError, "letter or digit"),
        ("datasetGroup", {"name": "has.dot"}, core.InvalidStepInputError, "letters, digits"),
        ("datasetGroup", {}, core.InvalidStepInputError, "needs a 'name'"),
        (
            "datasetGroup",
            {"name": "g", "params": {"domain": "RETAIL"}},
            core.InvalidStepInputError,
            "ECOMMERCE",
        ),
        (
            "datasetGroup",
            {"name": "g", "params": {"kmsKeyArn": "arn:aws:kms:us-east-1:1:key/k"}},
            core.InvalidStepInputError,
            "needs roleArn",
        ),
        (
            "datasetGroup",
            {"name": "g", "params": {"colour": "red"}},
            core.InvalidStepInputError,
            "no field ['colour']",
        ),
        (
            "dataset",
            {"name": "d", "params": {"datasetType": "USERS"}},
            core.InvalidStepInputError,
            "CreateDataset needs ['datasetGroupArn', 'schemaArn']",
        ),
        (
            "dataset",
            {"name": "d", "params": {"datasetType": "EVENTS"}},
            core.InvalidStepInputError,
            "datasetType must be one of",
        ),
        (
            "solution",
            {"name": "s", "params": {"recipeArn": "aws-hrnn"}},
            core.InvalidStepInputError,
            "retired; use aws-user-personalization-v2",
        ),
        (
            "solution",
            {"name": "s", "params": {"recipeArn": "aws-magic"}},
            core.InvalidStepInputError,
            "unknown recipe 'aws-magic'",
        ),
        (
            "recommender",
            {"name": "r", "params": {"recipeArn": "aws-sims"}},
            core.InvalidStepInputError,
            "unknown recipe 'aws-sims'",
        ),
        ("schema", {"name": "s", "params": {"schema": "{not json"}}, ValueError, "Expecting"),
        (
            "schema",
            {"name": "s", "params": {"schema": {"type": "enum"}}},
            schemas.InvalidSchemaError,
            "Avro record",
        ),
        (
            "schema",
            {
                "name": "s",
                "params": {
                    "schema": {
                        "type": "record",
                        "name": "R",
                        "fields": [{"name": "WHEN", "type": "date"}],
                    }
                },
            },
            schemas.InvalidSchemaError,
            "field WHEN has type 'date'",
        ),
        (
            "schema",
            {
                "name": "s",
                "params": {
                    "schema": {
                        "type": "record",
                        "name": "R",
                        "fields": [{"name": "A", "type": "string"}, {"name": "A", "type": "long"}],
                    }
                },
            },
            schemas.InvalidSchemaError,
            "declared twice",
        ),
        (
            "filter",
            {
                "name": "f",
                "params": {"datasetGroupArn": f"{PREFIX}:dataset-group/a"},
                "datasetGroupArn": f"{PREFIX}:dataset-group/b",
            },
            core.InvalidStepInputError,
            "given twice",
        ),
    ],
)
def test_bad_plan_entries_are_refused_before_any_call(step, event, error, words):
    class NoCalls:
        def __getattr__(self, name):
            raise AssertionError(f"{name} called")

    with pytest.raises(error) as caught:
        handlers.STEPS[step](NoCalls(), event, PREFIX)
    assert words in str(caught.value)


# --- finding ------------------------------------------------------------------------------------


def test_without_an_arn_prefix_schemas_are_found_on_any_page(account):
    client = core.personalize_client()
    for i in range(105):  # more than one page of ListSchemas (100)
        client.create_schema(name=f"other-{i:03}", schema=json.dumps(avro("USERS")))
    event = {"name": "other-104", "params": {"schema": avro("USERS")}}
    assert schemas.ensure(client, event)["created"] is False
    assert schemas.ensure(client, {**event, "name": "fresh"})["created"] is True


def test_every_current_custom_recipe_makes_a_solution(account):
    group = active_group()
    hpo = {
        "hpoObjective": {"type": "Maximize", "metricName": "precision_at_25"},
        "hpoResourceConfig": {"maxNumberOfTrainingJobs": "4", "maxParallelTrainingJobs": "2"},
    }
    client = core.personalize_client()
    for recipe in recipes.CUSTOM:
        params = {
            "recipeArn": recipe,
            "performHPO": True,
            "solutionConfig": {
                "hpoConfig": hpo,
                "algorithmHyperParameters": {"hidden_dimension": "64"},
            },
        }
        result = run("solution", recipe, params, datasetGroupArn=group)
        described = core.describe(client, FAMILIES["solution"], result["arn"])
        assert described["recipeArn"] == f"arn:aws:personalize:::recipe/{recipe}"
        assert described["performAutoTraining"] is False
        assert described["performHPO"] is True
        assert described["solutionConfig"]["hpoConfig"] == hpo
        assert run("solution", recipe, params, datasetGroupArn=group)["created"] is False


def test_auto_training_is_kept_when_configured(account):
    group = active_group()
    params = {"recipeArn": "aws-user-personalization-v2", "performAutoTraining": True}
    result = run("solution", "auto", params, datasetGroupArn=group)
    described = core.describe(core.personalize_client(), FAMILIES["solution"], result["arn"])
    assert described["performAutoTraining"] is True


def test_every_create_field_but_tags_is_described():
    """The fields `differences` can compare; a create-only field in a new botocore shows here."""
    for step, family in FAMILIES.items():
        assert family.create_fields - family.described_fields <= core.NOT_DESCRIBED, step
        assert family.name_field in family.create_fields
