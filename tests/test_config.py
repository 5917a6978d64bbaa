import json
import os
import subprocess
import sys

import pytest

from infra.config import ConfigError, load_config, parse_config
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
        (lambda c: c.update(prefix="Recops_Demo"), r"prefix: String should match pattern"),
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


def test_prep_options_from_the_config_are_accepted_by_the_prep_job(demo_config):
    from training.prep import PrepOptions

    options = PrepOptions.from_dict(demo_config.prep_options())
    assert options.columns["USER_ID"] == "user_id:token"
    assert options.format == "tsv"
    assert options.holdout_fraction == demo_config.evaluation.holdout_fraction


def test_fm_target_needing_ratings_without_a_rating_column_is_caught_at_synth():
    raw = _demo()
    raw["factorization_machines"]["target"] = "regression"
    del raw["data"]["interactions"]["columns"]["event_value"]
    with pytest.raises(ConfigError, match="target 'regression' needs ratings"):
        parse_config(raw)
