import json
import os
import re
import subprocess
import sys

import pytest

from recops.config import ConfigError, load_config, parse_config
from tests.conftest import DEMO_CONFIG, REPO


def _demo() -> dict:
    return json.loads(DEMO_CONFIG.read_text())


def test_demo_config_loads_with_cost_safe_defaults(demo_config):
    assert demo_config.prefix == "recops-demo"
    assert demo_config.personalize.campaigns == []  # campaigns bill by the hour
    assert all(not s.perform_auto_training for s in demo_config.personalize.solutions)
    assert demo_config.evaluation.k_values == [5, 10, 25]
    assert demo_config.data.interactions.columns.user_id == "user_id:token"


def test_error_names_field_value_and_allowed_values():
    raw = _demo()
    raw["personalize"]["solutions"][0]["recipe"] = "aws-hrnn"
    with pytest.raises(ConfigError) as err:
        parse_config(raw, source="my.json")
    message = str(err.value)
    assert "my.json" in message
    assert "personalize.solutions.0.recipe" in message
    assert "'aws-hrnn'" in message
    assert "aws-user-personalization-v2" in message  # what is allowed


def test_unknown_keys_are_rejected_not_ignored():
    raw = _demo()
    raw["evaluation"]["k_value"] = [10]
    with pytest.raises(ConfigError, match=r"evaluation\.k_value: Extra inputs are not permitted"):
        parse_config(raw)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c.update(prefix="Recops_Demo"),
            r"prefix: 'Recops_Demo' is not a valid prefix \(it has characters other than a-z, "
            r"0-9 and '-'; it does not start with a letter\): use 3 to 20 characters",
        ),
        (
            lambda c: c["personalize"].update(campaigns=[{"name": "rt", "solution": "nope"}]),
            r"refers to solution 'nope', which is not defined",
        ),
        (
            lambda c: c["personalize"].update(
                recommenders=[{"name": "top", "recipe": "aws-vod-top-picks"}]
            ),
            r"need a domain dataset group",
        ),
        (
            lambda c: c["evaluation"].update(holdout_fraction=1.5),
            r"evaluation\.holdout_fraction: Input should be less than 1",
        ),
        (
            lambda c: c["data"]["interactions"].update(path="s3://bucket/raw/x.csv"),
            r"data\.interactions\.path: must be a key or prefix inside the stack's data bucket",
        ),
        (
            lambda c: c["factorization_machines"]["knn"].update(k=5000),
            r"factorization_machines\.knn\.k: Input should be less than or equal to 1024",
        ),
    ],
)
def test_bad_values_are_explained(change, expected):
    raw = _demo()
    change(raw)
    with pytest.raises(ConfigError, match=expected):
        parse_config(raw)


def test_domain_recommender_recipe_must_match_domain():
    raw = _demo()
    raw["personalize"].update(
        domain="ECOMMERCE", recommenders=[{"name": "top", "recipe": "aws-vod-top-picks"}]
    )
    with pytest.raises(ConfigError, match="is not a ECOMMERCE recipe; allowed: aws-ecomm"):
        parse_config(raw)


def test_missing_file_and_bad_json(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)


def test_synth_with_a_bad_config_fails_before_any_construct(tmp_path):
    bad = tmp_path / "bad.json"
    raw = _demo()
    raw["factorization_machines"]["target"] = "ranking"
    bad.write_text(json.dumps(raw))
    env = dict(
        os.environ, CDK_CONTEXT_JSON=json.dumps({"config": str(bad)}), CDK_OUTDIR=str(tmp_path)
    )
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "factorization_machines.target" in result.stderr
    assert "'ranking'" in result.stderr
    assert not (tmp_path / "manifest.json").exists()


def test_fm_target_needing_ratings_without_a_rating_column_is_caught_at_synth():
    raw = _demo()
    raw["factorization_machines"]["target"] = "regression"
    del raw["data"]["interactions"]["columns"]["event_value"]
    with pytest.raises(ConfigError, match="target 'regression' needs ratings"):
        parse_config(raw)


# --- issue 9, item 5: what a new user tried ------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "field", "kind"),
    [
        (("factorization_machines",), "processing_instance_type", "processing"),
        (("factorization_machines",), "training_instance_type", "training"),
        (("factorization_machines", "knn"), "instance_type", "training"),
        (("factorization_machines", "knn"), "transform_instance_type", "transform"),
    ],
)
def test_an_instance_type_sagemaker_does_not_offer_is_refused(section, field, kind):
    raw = _demo()
    target = raw
    for key in section:
        target = target.setdefault(key, {})
    target[field] = "ml.banana.xlarge"
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    message = str(err.value)
    assert f"{'.'.join(section)}.{field}: 'ml.banana.xlarge' is not an instance type" in message
    assert f"SageMaker offers for {kind} jobs" in message
    assert "recops/sagemaker_instance_types.json" in message


def test_a_near_miss_instance_type_gets_suggestions():
    raw = _demo()
    raw["factorization_machines"]["training_instance_type"] = "ml.c5.xlarg"
    with pytest.raises(ConfigError, match=r"did you mean ml\.c5\.xlarge"):
        parse_config(raw)


def test_the_instance_type_table_is_botocores_and_holds_the_defaults():
    from recops import instance_types
    from recops.config import FactorizationMachinesConfig, KnnConfig

    table = instance_types.table()
    assert {k: v for k, v in instance_types.generate().items() if k != "source"} == {
        k: v for k, v in table.items() if k != "source"
    }, "regenerate with python -m recops.instance_types"
    fm, knn = FactorizationMachinesConfig(), KnnConfig()
    assert fm.processing_instance_type in table["processing"]
    assert fm.training_instance_type in table["training"]
    assert knn.instance_type in table["training"]
    assert knn.transform_instance_type in table["transform"]


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
        "arn:aws:kms:eu-west-1:111122223333:key/0f6c3c36-1111-2222-3333-444455556666",
        "arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    ],
)
def test_single_and_multi_region_key_arns_are_accepted(arn):
    raw = _demo()
    raw["kms_key_arn"] = arn
    assert parse_config(raw).kms_key_arn == arn


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:kms:eu-west-1:111122223333:alias/my-key",
        "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234",
        "0f6c3c36-1111-2222-3333-444455556666",
    ],
)
def test_other_key_references_are_refused_in_words(arn):
    raw = _demo()
    raw["kms_key_arn"] = arn
    with pytest.raises(ConfigError, match=r"kms_key_arn: use the ARN of a KMS key: .*mrk- and 32"):
        parse_config(raw)


def test_the_demo_filter_on_event_type_without_event_types_is_refused():
    """The demo config had this filter; ML-100K has ratings and no event types."""
    raw = _demo()
    raw["personalize"]["filters"] = [
        {"name": "unwatched", "expression": 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")'}
    ]
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert (
        "personalize.filters[unwatched].expression: uses Interactions.EVENT_TYPE, but the "
        "interactions have no event-type column: map data.interactions.columns.event_type, or "
        "remove the filter"
    ) in str(err.value)
    raw["data"]["interactions"]["columns"]["event_type"] = "event"
    assert parse_config(raw).personalize.filters[0].name == "unwatched"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (
            "EXCLUDE ItemID WHERE Interactions.EVENT_VALUE > 3",
            r"Interactions\.EVENT_VALUE: filters on interactions can use only EVENT_TYPE",
        ),
        (
            'INCLUDE ItemID WHERE Items.GENRE IN ("Comedy")',
            r"uses Items\.GENRE, but there is no items dataset: add data\.items",
        ),
        (
            "EXCLUDE ItemID WHERE Users.AGE < 18",
            r"uses Users\.AGE, but there is no users dataset: add data\.users",
        ),
    ],
)
def test_filters_must_use_fields_the_data_has(expression, expected):
    raw = _demo()
    raw["personalize"]["filters"] = [{"name": "f", "expression": expression}]
    with pytest.raises(ConfigError, match=expected):
        parse_config(raw)


def test_a_filter_on_an_items_column_the_items_do_not_have_is_refused():
    raw = _demo()
    raw["data"]["items"] = {
        "path": "raw/items.csv",
        "id_column": "item_id",
        "categorical": ["GENRE"],
    }
    raw["personalize"]["filters"] = [
        {"name": "f", "expression": 'INCLUDE ItemID WHERE Items.COLOR IN ("red")'}
    ]
    with pytest.raises(ConfigError, match=r"Items\.COLOR, which is not a column of data\.items"):
        parse_config(raw)
    raw["personalize"]["filters"][0]["expression"] = 'INCLUDE ItemID WHERE Items.GENRE IN ("x")'
    assert parse_config(raw).personalize.filters


def test_batch_num_results_default_leaves_room_for_removing_seen_items(demo_config):
    assert [b.num_results for b in demo_config.personalize.batch_inference] == [100, 100]
    raw = _demo()
    raw["personalize"]["batch_inference"][0]["num_results"] = 10
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert (
        "personalize.batch_inference.0.num_results 10 is below the largest evaluation K (25)"
    ) in str(err.value)
    raw["personalize"]["batch_inference"][0]["num_results"] = 501
    with pytest.raises(
        ConfigError, match=r"num_results: Input should be less than or equal to 500"
    ):
        parse_config(raw)


@pytest.mark.parametrize("value", [None, ""])
def test_interactions_without_a_timestamp_are_refused(value):
    raw = _demo()
    raw["data"]["interactions"]["columns"]["timestamp"] = value
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    message = str(err.value)
    assert "data.interactions.columns.timestamp: interactions need a timestamp column" in message
    assert "temporal holdout" in message
    assert "map data.interactions.columns.timestamp" in message


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        ("recops--demo", "it has two hyphens in a row"),
        ("r" * 21, "it has 21 characters"),
        ("ab", "it has 2 characters"),
        ("recops-", "it ends with a hyphen"),
        (
            "Recops",
            "it has characters other than a-z, 0-9 and '-'; it does not start with a letter",
        ),
    ],
)
def test_prefix_limits_are_said_in_words(prefix, why):
    raw = _demo()
    raw["prefix"] = prefix
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    message = str(err.value)
    assert f"prefix: {prefix!r} is not a valid prefix ({why}): use 3 to 20 characters" in message
    assert "lower-case letters a-z, digits 0-9 and hyphens" in message
    assert "'--' separates the prefix from the rest of every resource name" in message


def test_resource_name_limits_are_said_in_words():
    raw = _demo()
    raw["personalize"]["solutions"][0]["name"] = "user personalization"
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert (
        "personalize.solutions.0.name: 'user personalization' is not a valid name: use 1 to 40 "
        "characters: letters, digits, '-' and '_', starting with a letter or digit"
    ) in str(err.value)


def test_a_recipe_that_cannot_recommend_for_users_is_not_batch_inferred():
    raw = _demo()
    raw["personalize"]["batch_inference"].append({"solution": "similar-items"})
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert (
        "personalize.batch_inference.2: solution 'similar-items' uses aws-similar-items, which "
        "does not recommend items for a user"
    ) in str(err.value)


def test_a_domain_dataset_group_needs_event_types():
    raw = _demo()
    raw["personalize"].update(
        domain="VIDEO_ON_DEMAND", recommenders=[{"name": "top", "recipe": "aws-vod-top-picks"}]
    )
    with pytest.raises(ConfigError, match=r"interactions need an EVENT_TYPE column; map data"):
        parse_config(raw)
    raw["data"]["interactions"]["columns"]["event_type"] = "event"
    assert parse_config(raw).personalize.domain == "VIDEO_ON_DEMAND"


def test_knn_index_must_support_inner_product():
    raw = _demo()
    raw["factorization_machines"]["knn"]["index_type"] = "faiss.IVFPQ"
    with pytest.raises(ConfigError, match=r"faiss\.IVFPQ does not support the INNER_PRODUCT"):
        parse_config(raw)


def test_solution_config_is_passed_through_and_checked_against_the_api():
    raw = _demo()
    raw["personalize"]["solutions"][0]["solution_config"] = {"eventValueThreshold": "4"}
    assert parse_config(raw).personalize.solutions[0].solution_config == {
        "eventValueThreshold": "4"
    }
    raw["personalize"]["solutions"][0]["solution_config"] = {"hpoConfg": {}}
    with pytest.raises(ConfigError, match=r"does not fit Personalize's SolutionConfig.*hpoConfg"):
        parse_config(raw)


def test_metadata_columns_must_be_schema_field_names():
    raw = _demo()
    raw["data"]["items"] = {"path": "raw/i.csv", "id_column": "id", "categorical": ["age group"]}
    with pytest.raises(ConfigError, match=r"data\.items\.categorical: \['age group'\]: these"):
        parse_config(raw)


# --- where the model lives, and its JSON Schema -------------------------------------------------


def test_the_committed_json_schema_is_the_models():
    from recops.config import SCHEMA_FILE, json_schema

    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), (
        "regenerate with python -m recops.config"
    )


def test_the_json_schema_accepts_the_demo_and_refuses_what_the_model_refuses():
    import jsonschema

    from recops.config import SCHEMA_FILE

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    assert list(validator.iter_errors(_demo())) == []
    for change in (
        lambda c: c.update(prefix="recops--demo"),
        lambda c: c["factorization_machines"].update(training_instance_type="ml.banana.xlarge"),
        lambda c: c["data"]["interactions"]["columns"].update(timestamp=None),
        lambda c: c["personalize"]["solutions"][0].update(name="x" * 41),
        lambda c: c.update(kms_key_arn="arn:aws:kms:eu-west-1:111122223333:alias/k"),
        lambda c: c["evaluation"].update(k_value=[10]),
    ):
        raw = _demo()
        change(raw)
        assert list(validator.iter_errors(raw)), raw


def test_the_model_is_shared_from_recops_and_training_stays_plain():
    """The CLI imports recops, never infra; training/ gets JSON options, never the model."""
    assert not (REPO / "infra" / "config.py").exists()
    for path in (REPO / "recops").glob("*.py"):
        assert not re.search(r"^\s*(from|import) infra\b", path.read_text(), re.M), path
    for path in (REPO / "training").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) (recops|pydantic|infra)\b", text, re.M), path


def test_spot_training_waits_at_most_an_hour_for_built_in_algorithms():
    """Built-in algorithms without checkpoints: MaxWaitTimeInSeconds at most 3600."""
    raw = json.loads(DEMO_CONFIG.read_text())
    raw["factorization_machines"]["spot"] = True
    assert parse_config(raw).factorization_machines.spot_wait_seconds == 3600
    raw["factorization_machines"]["max_runtime_seconds"] = 7200
    with pytest.raises(ConfigError, match="at most 3600 s in all"):
        parse_config(raw)
    raw["factorization_machines"]["max_runtime_seconds"] = 1800
    raw["factorization_machines"]["max_wait_seconds"] = 1200
    with pytest.raises(ConfigError, match="below max_runtime_seconds 1800"):
        parse_config(raw)
