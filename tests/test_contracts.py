"""recops.contracts: what the config promises is what the run-time code and the services accept."""

import copy
import json
import re
from dataclasses import asdict

import pytest
from botocore.validate import ParamValidator

from bench.datasets import synthetic_interactions
from localaws import LocalAccount
from localaws.rules.personalize import RETIRED_RECIPES, schema_problems
from localaws.rules.sagemaker import hyperparameter_failure
from localaws.validation import request_errors, service_model
from recops import contracts, names
from recops.config import parse_config
from tests.conftest import DEMO_CONFIG
from training import evaluate, prep

ACCOUNT, REGION = "123456789012", "us-east-1"
RUN = "9b1c2d3e4f5a"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
# Where each plan family is created: the Create* operation.
OPERATIONS = {
    "datasetGroup": "CreateDatasetGroup",
    "schemas": "CreateSchema",
    "datasets": "CreateDataset",
    "imports": "CreateDatasetImportJob",
    "filters": "CreateFilter",
    "eventTracker": "CreateEventTracker",
    "solutions": "CreateSolution",
    "solutionVersions": "CreateSolutionVersion",
    "batchInferenceJobs": "CreateBatchInferenceJob",
    "campaigns": "CreateCampaign",
    "recommenders": "CreateRecommender",
}
ORDER = list(OPERATIONS)
# The ARN family each reference names -> the plan family it is created in.
ARN_FAMILIES = {
    "datasetGroup": "datasetGroup",
    "schema": "schemas",
    "dataset": "datasets",
    "solution": "solutions",
    "solutionVersion": "solutionVersions",
    "filter": "filters",
}
ARN_FAMILY_OF = {plan_family: arn_family for arn_family, plan_family in ARN_FAMILIES.items()}


def _demo() -> dict:
    return json.loads(DEMO_CONFIG.read_text())


def _custom_config() -> dict:
    """Every custom-group feature: metadata, filters, tracker, KMS, HPO, campaigns."""
    raw = _demo()
    raw["kms_key_arn"] = KEY_ARN
    raw["data"]["interactions"]["columns"]["event_type"] = "event"
    raw["data"]["users"] = {
        "path": "raw/users.csv",
        "id_column": "user_id",
        "categorical": ["GENDER"],
        "numerical": ["AGE"],
    }
    raw["data"]["items"] = {
        "path": "raw/items.csv",
        "id_column": "item_id",
        "categorical": ["GENRE"],
    }
    personalize = raw["personalize"]
    personalize["filters"] = [
        {
            "name": "unwatched",
            "expression": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")',
        },
        {"name": "comedies", "expression": 'INCLUDE ItemID WHERE Items.GENRE IN ("Comedy")'},
    ]
    personalize["event_tracker"] = True
    personalize["solutions"][0]["perform_hpo"] = True
    personalize["solutions"][0]["solution_config"] = {
        "hpoConfig": {"hpoResourceConfig": {"maxNumberOfTrainingJobs": "4"}},
        "algorithmHyperParameters": {"hidden_dimension": "64"},
    }
    personalize["batch_inference"].append(
        {"solution": "user-personalization", "filter": "unwatched"}
    )
    personalize["campaigns"] = [{"name": "realtime", "solution": "user-personalization"}]
    return raw


def _domain_config() -> dict:
    raw = _demo()
    raw["data"]["interactions"]["columns"]["event_type"] = "event"
    raw["personalize"]["domain"] = "VIDEO_ON_DEMAND"
    raw["personalize"]["recommenders"] = [{"name": "top-picks", "recipe": "aws-vod-top-picks"}]
    return raw


CONFIGS = {"demo": _demo, "custom": _custom_config, "domain": _domain_config}


def _entries(plan: dict, family: str) -> list[dict]:
    value = plan[family]
    return [] if value is None else value if isinstance(value, list) else [value]


def _placeholder(reference: str) -> str:
    """A value of the right form for each reference, as the run would fill it."""
    kind, _, rest = reference.partition(":")
    if kind == "arn":
        family, _, key = rest.partition(":")
        resource = {"datasetGroup": "dataset-group", "solutionVersion": "solution"}.get(
            family, family
        )
        suffix = f"/{key}/abcdef12" if family == "solutionVersion" else f"/{key}"
        return f"arn:aws:personalize:{REGION}:{ACCOUNT}:{resource.lower()}{suffix}"
    if kind == "role":
        return f"arn:aws:iam::{ACCOUNT}:role/recops-demo-PersonalizeServiceRole"
    if kind == "s3":
        return "s3://recops-demo-data/runs/" + rest.replace(":", "/")
    raise AssertionError(f"unknown reference {reference!r}")


def _filled(entry: dict, attempt: int = 0) -> dict:
    request = copy.deepcopy(entry["create"])
    for path, reference in entry["fill"].items():
        if reference == contracts.RUN_NAME:
            value = names.run_owned(entry["stem"], RUN, attempt)
        else:
            value = _placeholder(reference)
        *parents, leaf = path.split(".")
        target = request
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return request


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def config(request):
    return parse_config(CONFIGS[request.param](), source=request.param)


def test_every_request_of_the_plan_fits_botocores_personalize_model(config):
    plan = contracts.personalize_plan(config)
    model = service_model("personalize")
    checked = 0
    for family, operation in OPERATIONS.items():
        shape = model.operation_model(operation).input_shape
        for entry in _entries(plan, family):
            for attempt in (0, names.MAX_ATTEMPT):
                request = _filled(entry, attempt)
                report = ParamValidator().validate(request, shape)  # members and types
                assert not report.has_errors(), report.generate_report()
                errors = request_errors("personalize", shape, request)  # patterns and lengths
                assert errors == [], (family, entry["key"], errors)
            checked += 1
    assert checked >= 8


def test_every_reference_names_an_earlier_entry_or_a_run_value(config):
    plan = contracts.personalize_plan(config)
    created: set[tuple[str, str]] = set()
    for family in ORDER:
        for entry in _entries(plan, family):
            assert ("name" in entry) != ("stem" in entry), entry
            for reference in entry["fill"].values():
                kind, _, rest = reference.partition(":")
                if kind == "arn":
                    arn_family, _, key = rest.partition(":")
                    assert (ARN_FAMILIES[arn_family], key) in created, (family, reference)
                else:
                    assert re.fullmatch(
                        r"role:personalize|run:name|s3:batchInput|s3:import:[A-Z]+|s3:batchOutput:\S+",
                        reference,
                    ), reference
            if "stem" in entry:
                assert contracts.RUN_NAME in entry["fill"].values(), entry
        created |= {(family, e["key"]) for e in _entries(plan, family)}


def test_plan_choices_cost_nothing_unless_configured(config):
    plan = contracts.personalize_plan(config)
    for solution in plan["solutions"]:
        assert solution["create"]["performAutoTraining"] is False
    for campaign in plan["campaigns"]:
        assert campaign["create"]["minProvisionedTPS"] == 1
    for job in plan["batchInferenceJobs"]:
        assert job["create"]["numResults"] == 100  # room for removing seen items before top-K
    for recipe in [s["create"]["recipeArn"] for s in plan["solutions"] + plan["recommenders"]]:
        assert recipe.rsplit("/", 1)[1] not in RETIRED_RECIPES


def test_schemas_are_avro_personalize_accepts_and_name_by_content(config):
    plan = contracts.personalize_plan(config)
    for schema in plan["schemas"]:
        assert schema_problems(schema["create"]["schema"]) == []
        content = json.loads(schema["create"]["schema"])
        domain = schema["create"].get("domain")
        assert schema["name"] == names.schema_name(
            config.prefix, schema["key"].lower(), content, domain
        )


def test_pass_through_options_reach_the_requests():
    config = parse_config(_custom_config())
    plan = contracts.personalize_plan(config)
    solution = plan["solutions"][0]["create"]
    assert solution["performHPO"] is True
    assert solution["solutionConfig"]["algorithmHyperParameters"] == {"hidden_dimension": "64"}
    assert plan["datasetGroup"]["create"]["kmsKeyArn"] == KEY_ARN
    assert plan["datasetGroup"]["fill"] == {"roleArn": contracts.ROLE}
    filtered = next(j for j in plan["batchInferenceJobs"] if "filterArn" in j["fill"])
    assert filtered["fill"]["filterArn"] == "arn:filter:unwatched"
    assert filtered["create"]["jobInput"]["s3DataSource"] == {"kmsKeyArn": KEY_ARN}
    assert [d["key"] for d in plan["datasets"]] == ["INTERACTIONS", "USERS", "ITEMS"]


def test_the_config_owned_plan_creates_cleanly_on_the_local_personalize():
    """Dataset group, schemas, datasets, filters, tracker and solutions, in the plan's order."""
    raw = _custom_config()
    del raw["kms_key_arn"]  # the local account has no such key
    plan = contracts.personalize_plan(parse_config(raw))
    arns: dict[str, str] = {}
    with LocalAccount() as account:
        personalize = account.client("personalize")
        for family in (
            "datasetGroup",
            "schemas",
            "datasets",
            "filters",
            "eventTracker",
            "solutions",
        ):
            operation = OPERATIONS[family]
            method = getattr(personalize, re.sub(r"(?<!^)([A-Z])", r"_\1", operation).lower())
            for entry in _entries(plan, family):
                request = copy.deepcopy(entry["create"])
                for path, reference in entry["fill"].items():
                    request[path] = arns[reference]
                response = method(**request)
                arn = next(v for k, v in response.items() if k.endswith("Arn"))
                arns[contracts.arn_of(ARN_FAMILY_OF.get(family, family), entry["key"])] = arn
            account.clock.advance(3600)
        solutions = personalize.list_solutions()["solutions"]
    assert sorted(s["name"] for s in solutions) == sorted(e["name"] for e in plan["solutions"])


# --- prep ---------------------------------------------------------------------------------------


def test_prep_options_round_trip_through_the_prep_jobs_reader(config):
    options = contracts.prep_options(config)
    parsed = prep.PrepOptions.from_dict(json.loads(json.dumps(options)))
    assert json.loads(json.dumps(asdict(parsed))) == options
    assert parsed.holdout_fraction == config.evaluation.holdout_fraction
    assert parsed.seed == contracts.PREP_SEED


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """prep on synthetic data with a config's contract options, and its manifest."""
    folder = tmp_path_factory.mktemp("contract")
    frame = synthetic_interactions(80, 60, 4_000, seed=5).assign(event="watch")
    frame.to_csv(folder / "interactions.csv", index=False)
    raw = _demo()
    raw["data"]["interactions"].update(format="csv")
    raw["data"]["interactions"]["columns"] = {
        "user_id": "user_id",
        "item_id": "item_id",
        "timestamp": "timestamp",
        "event_type": "event",
        "event_value": "rating",
    }
    raw["factorization_machines"].update(min_user_interactions=2, min_item_interactions=2)
    config = parse_config(raw)
    (folder / "prep.json").write_text(json.dumps(contracts.prep_options(config)))
    out = folder / "out"
    args = ["--input", str(folder / "interactions.csv"), "--output", str(out)]
    assert prep.main([*args, "--options", str(folder / "prep.json")]) == 0
    return config, out, json.loads((out / "manifest.json").read_text())


def test_prep_writes_the_files_and_schema_the_plan_imports(prepared):
    config, out, _ = prepared
    plan = contracts.personalize_plan(config)
    (interactions,) = plan["imports"]
    assert (out / interactions["file"]).exists()
    written = json.loads((out / "personalize" / "interactions.schema.json").read_text())
    (schema,) = plan["schemas"]
    assert json.loads(schema["create"]["schema"]) == written


def test_evaluation_arguments_are_accepted_and_give_every_k(prepared, tmp_path):
    config, out, _ = prepared
    arguments = contracts.evaluation_arguments(config)
    assert arguments == ["--k", "5", "--k", "10", "--k", "25"]
    report = tmp_path / "report"
    assert evaluate.main(["--prepared", str(out), *arguments, "--output", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    for k in config.evaluation.k_values:
        assert f"precision@{k}" in metrics["results"]["popularity"]


def test_evaluation_lists_what_it_cannot_score_and_why(demo_config):
    evaluation = contracts.evaluation_contract(demo_config)
    assert [s["solution"] for s in evaluation["notScored"]] == ["similar-items"]
    assert (
        "aws-similar-items recommends items related to an item" in evaluation["notScored"][0]["why"]
    )
    assert [p["batchJob"] for p in evaluation["personalize"]] == [
        "user-personalization",
        "popularity",
    ]


# --- SageMaker ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["implicit", "binary", "regression"])
@pytest.mark.parametrize("index_type", ["faiss.Flat", "faiss.IVFFlat"])
def test_hyperparameters_pass_the_built_in_algorithms_rules(prepared, target, index_type):
    _, _, manifest = prepared
    raw = _demo()
    raw["factorization_machines"].update(target=target)
    raw["factorization_machines"]["knn"].update(index_type=index_type)
    config = parse_config(raw)
    fm = contracts.resolve_hyperparameters(contracts.fm_hyperparameters(config), manifest)
    knn = contracts.resolve_hyperparameters(contracts.knn_hyperparameters(config), manifest)
    assert hyperparameter_failure("factorization-machines", fm) is None
    assert hyperparameter_failure("knn", knn) is None
    assert fm["feature_dim"] == str(manifest["fm"]["feature_dim"])
    assert knn["sample_size"] == str(manifest["items"])
    assert knn["feature_dim"] == str(config.factorization_machines.num_factors + 1)
    assert all(isinstance(v, str) for v in {**fm, **knn}.values())


def test_the_whole_contract_is_json_and_printable(demo_config, capsys):
    whole = contracts.contracts(demo_config)
    assert json.loads(json.dumps(whole)) == whole
    assert set(whole) == {
        "version",
        "stack",
        "data",
        "prep",
        "personalize",
        "sagemaker",
        "evaluation",
    }
    assert whole["data"] == {"interactions": demo_config.data.interactions.path}
    assert contracts.main([str(DEMO_CONFIG), "prep"]) == 0
    assert json.loads(capsys.readouterr().out) == whole["prep"]
