"""Every contract between the synth-time config and the run-time code, derived from the config once.

Pure functions of a validated `PipelineConfig` (no AWS calls, no CDK). The stack deploys
`contracts(config)` as the state machine's default input; `recops start --config FILE` computes
the same from another file. Defaults the config does not carry are written here and nowhere
else (`PREP_SEED`, the predictor types, the KNN metric...); the jobs and Lambda steps receive
complete values and default nothing.

`contracts(config)` is one JSON object:

    {"version": 1, "stack": "<prefix>",
     "data": {...},                 where prep reads each table in the data bucket (`data_paths`)
     "prep": {...},                 every option of training/prep.py (`prep_options`)
     "personalize": {...},          the Personalize plan (`personalize_plan`, below)
     "sagemaker": {...},            job name stems, tags, instance types, hyperparameters
     "evaluation": {...}}           training/evaluate.py's arguments and what is scored

**The Personalize plan** (what the describe-or-create Lambda steps receive, one entry at a time):

    {"stack": "recops-demo",
     "tags": [{"tagKey": "recops:stack", "tagValue": "recops-demo"}],
     "datasetGroup": ENTRY,
     "schemas": [ENTRY], "datasets": [ENTRY], "imports": [ENTRY],
     "filters": [ENTRY], "eventTracker": ENTRY | null,
     "solutions": [ENTRY], "solutionVersions": [ENTRY],
     "batchInferenceJobs": [ENTRY], "campaigns": [ENTRY], "recommenders": [ENTRY]}

Every ENTRY is

    {"key": "INTERACTIONS" | a config name,     how other entries refer to it
     "name": "recops-demo--interactions",       config-owned: the final name (describe-or-create)
     "stem": "recops-demo--interactions-",      run-owned: name = recops.names.run_owned(stem,
                                                  run id, attempt); see recops.names
     "create": {...},                           the Create* request, in the API's own members,
                                                  minus what only the run knows
     "fill": {"member.path": "REFERENCE"}}      the members the step sets before calling Create*

A config-owned entry has "name" (and `create` holds it); a run-owned one has "stem" and
`fill` sets its name member to `RUN_NAME`. A dotted member path sets a nested member
(`jobInput.s3DataSource.path`). REFERENCE is one of:

- `arn:<family>:<key>`: the ARN of the plan entry of that family and key, known once its step
  ran (`arn:datasetGroup:main`, `arn:schema:INTERACTIONS`, `arn:dataset:INTERACTIONS`,
  `arn:solution:<name>`, `arn:solutionVersion:<solution name>`, `arn:filter:<name>`);
- `role:personalize`: the stack's Personalize service role (a stack output);
- `run:name`: the entry's run-owned name (stem + run id + attempt);
- `s3:import:<DATASET TYPE>`: the S3 URI of this run's import file for that dataset (prep
  writes it as `file`, which the imports entry carries);
- `s3:batchInput`: the S3 URI of this run's batch input (the holdout users, one JSON line each);
- `s3:batchOutput:<key>`: the S3 prefix URI this run's batch job `<key>` writes to.

Order: datasetGroup → schemas → datasets → imports → filters and eventTracker → solutions →
solutionVersions → batchInferenceJobs → campaigns and recommenders (when configured).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from recops import names
from recops.config import (
    USER_RECIPES,
    MetadataSource,
    PipelineConfig,
    load_config,
)

VERSION = 1
# The one prep option the config does not carry: negatives and splits are reproducible.
PREP_SEED = 0
# What training/prep.py writes under its output for each Personalize dataset.
PREPARED_FILES = {
    "INTERACTIONS": "personalize/interactions.csv",
    "USERS": "personalize/users.csv",
    "ITEMS": "personalize/items.csv",
}
DATASET_TYPES = {"INTERACTIONS": "Interactions", "USERS": "Users", "ITEMS": "Items"}
DATASET_GROUP_KEY = "main"

ROLE = "role:personalize"
RUN_NAME = "run:name"
BATCH_INPUT = "s3:batchInput"

# SageMaker jobs of one run, by the label in their names.
SAGEMAKER_JOBS = ("prep", "fm", "fm-to-knn", "knn", "knn-model", "knn-transform", "evaluate")
# FM's predictor for each prep target: implicit and binary targets are 0/1 labels.
FM_PREDICTOR = {"implicit": "binary_classifier", "binary": "binary_classifier"}
FM_PREDICTOR_DEFAULT = "regressor"
# KNN over FM item rows [V_i, w_i] answers "top items for user u" by inner product with
# [V_u, 1] (training/fm_to_knn.py); its labels are item indices, hence a classifier.
KNN_METRIC = "INNER_PRODUCT"
KNN_PREDICTOR = "classifier"
NOT_SCORED_WHY = (
    "recommends items related to an item or re-ranks a given list, not a top-K list for a "
    "user, so the per-user holdout cannot score it"
)


def arn_of(family: str, key: str) -> str:
    return f"arn:{family}:{key}"


def recipe_arn(recipe: str, partition: str = "aws") -> str:
    return f"arn:{partition}:personalize:::recipe/{recipe}"


# --- prep ---------------------------------------------------------------------------------------


def prep_options(config: PipelineConfig) -> dict[str, Any]:
    """Every option of the data-preparation job (training/prep.py), as its JSON options file."""
    source, fm = config.data.interactions, config.factorization_machines
    columns = source.columns
    return {
        "format": source.format,
        "columns": {
            "USER_ID": columns.user_id,
            "ITEM_ID": columns.item_id,
            "TIMESTAMP": columns.timestamp,
            "EVENT_TYPE": columns.event_type,
            "EVENT_VALUE": columns.event_value,
        },
        "timestamp_unit": source.timestamp_unit,
        "min_user_interactions": fm.min_user_interactions,
        "min_item_interactions": fm.min_item_interactions,
        "filter_until_stable": fm.filter_until_stable,
        "split": fm.split,
        "holdout_fraction": config.evaluation.holdout_fraction,
        "target": fm.target,
        "rating_threshold": fm.rating_threshold,
        "negatives_per_positive": fm.negatives_per_positive,
        "days_since_first": fm.days_since_first,
        "shard_records": fm.shard_records,
        "seed": PREP_SEED,
        "users": _metadata_options(config.data.users),
        "items": _metadata_options(config.data.items),
    }


def _metadata_options(source: MetadataSource | None) -> dict[str, Any] | None:
    return None if source is None else source.model_dump()


# --- Personalize --------------------------------------------------------------------------------


def schemas(config: PipelineConfig) -> dict[str, dict]:
    """The Avro schema of each dataset, exactly as training/prep.py writes it next to the CSV."""
    from training.personalize_schemas import interactions_schema, metadata_schema

    columns = config.data.interactions.columns
    mapped = {
        "USER_ID": columns.user_id,
        "ITEM_ID": columns.item_id,
        "TIMESTAMP": columns.timestamp,
        "EVENT_TYPE": columns.event_type,
        "EVENT_VALUE": columns.event_value,
    }
    result = {"INTERACTIONS": interactions_schema([c for c, source in mapped.items() if source])}
    for dataset_type, source, id_field in (
        ("USERS", config.data.users, "USER_ID"),
        ("ITEMS", config.data.items, "ITEM_ID"),
    ):
        if source is not None:
            result[dataset_type] = metadata_schema(
                DATASET_TYPES[dataset_type], id_field, source.categorical, source.numerical
            )
    return result


def personalize_plan(config: PipelineConfig, *, partition: str = "aws") -> dict[str, Any]:
    """Every Personalize resource of the config, named and with its create request (see above)."""
    stack, personalize = config.prefix, config.personalize
    tags = names.personalize_tags(stack)
    plan: dict[str, Any] = {"stack": stack, "tags": tags}
    plan["datasetGroup"] = _dataset_group(config, tags)
    dataset_schemas = schemas(config)
    plan["schemas"] = [
        _config_owned(
            dataset_type,
            names.schema_name(stack, dataset_type.lower(), schema, personalize.domain),
            {
                "schema": json.dumps(schema, separators=(",", ":")),
                **({"domain": personalize.domain} if personalize.domain else {}),
            },
        )
        for dataset_type, schema in dataset_schemas.items()
    ]
    in_group = {"datasetGroupArn": arn_of("datasetGroup", DATASET_GROUP_KEY)}
    plan["datasets"] = [
        _config_owned(
            dataset_type,
            names.config_owned(stack, dataset_type.lower()),
            {"datasetType": DATASET_TYPES[dataset_type], "tags": tags},
            {**in_group, "schemaArn": arn_of("schema", dataset_type)},
        )
        for dataset_type in dataset_schemas
    ]
    plan["imports"] = [
        {
            **_run_owned(
                dataset_type,
                names.run_stem(stack, dataset_type.lower()),
                {"importMode": "FULL", "tags": tags},
                {
                    "jobName": RUN_NAME,
                    "datasetArn": arn_of("dataset", dataset_type),
                    "dataSource.dataLocation": f"s3:import:{dataset_type}",
                    "roleArn": ROLE,
                },
            ),
            "file": PREPARED_FILES[dataset_type],
        }
        for dataset_type in dataset_schemas
    ]
    plan["filters"] = [
        _config_owned(
            item.name,
            names.config_owned(stack, item.name),
            {"filterExpression": item.expression, "tags": tags},
            in_group,
        )
        for item in personalize.filters
    ]
    plan["eventTracker"] = (
        _config_owned("tracker", names.config_owned(stack, "tracker"), {"tags": tags}, in_group)
        if personalize.event_tracker
        else None
    )
    plan["solutions"] = [
        _config_owned(
            solution.name,
            names.config_owned(stack, solution.name),
            {
                "recipeArn": recipe_arn(solution.recipe, partition),
                "performAutoTraining": solution.perform_auto_training,
                "performHPO": solution.perform_hpo,
                **(
                    {"solutionConfig": solution.solution_config} if solution.solution_config else {}
                ),
                "tags": tags,
            },
            in_group,
        )
        for solution in personalize.solutions
    ]
    plan["solutionVersions"] = [
        _run_owned(
            solution.name,
            names.run_stem(stack, solution.name),
            {"trainingMode": "FULL", "tags": tags},
            {"name": RUN_NAME, "solutionArn": arn_of("solution", solution.name)},
        )
        for solution in personalize.solutions
    ]
    plan["batchInferenceJobs"] = [_batch_job(config, batch, tags) for batch in _batches(config)]
    plan["campaigns"] = [
        _config_owned(
            campaign.name,
            names.config_owned(stack, campaign.name),
            {"minProvisionedTPS": campaign.min_provisioned_tps, "tags": tags},
            {"solutionVersionArn": arn_of("solutionVersion", campaign.solution)},
        )
        for campaign in personalize.campaigns
    ]
    plan["recommenders"] = [
        _config_owned(
            recommender.name,
            names.config_owned(stack, recommender.name),
            {
                "recipeArn": recipe_arn(recommender.recipe, partition),
                "recommenderConfig": {
                    "minRecommendationRequestsPerSecond": (
                        recommender.min_recommendation_requests_per_second
                    )
                },
                "tags": tags,
            },
            in_group,
        )
        for recommender in personalize.recommenders
    ]
    return plan


def _config_owned(
    key: str, name: str, create: dict[str, Any], fill: dict[str, str] | None = None
) -> dict[str, Any]:
    return {"key": key, "name": name, "create": {"name": name, **create}, "fill": dict(fill or {})}


def _run_owned(key: str, stem: str, create: dict[str, Any], fill: dict[str, str]) -> dict[str, Any]:
    return {"key": key, "stem": stem, "create": create, "fill": fill}


def _dataset_group(config: PipelineConfig, tags: list[dict[str, str]]) -> dict[str, Any]:
    create: dict[str, Any] = {"tags": tags}
    fill = {}
    if config.personalize.domain:
        create["domain"] = config.personalize.domain
    if config.kms_key_arn:
        # Personalize encrypts the group's data with the key, through the role it assumes.
        create["kmsKeyArn"] = config.kms_key_arn
        fill["roleArn"] = ROLE
    name = names.config_owned(config.prefix, "group")
    return _config_owned(DATASET_GROUP_KEY, name, create, fill)


def _batches(config: PipelineConfig) -> list[tuple[str, Any]]:
    """(key, entry) per batch job: the solution's name, and the filter's when one is applied."""
    return [
        (f"{b.solution}-{b.filter}" if b.filter else b.solution, b)
        for b in config.personalize.batch_inference
    ]


def _batch_job(config: PipelineConfig, keyed: tuple[str, Any], tags: list) -> dict[str, Any]:
    key, batch = keyed
    encryption = {"kmsKeyArn": config.kms_key_arn} if config.kms_key_arn else {}
    fill = {
        "jobName": RUN_NAME,
        "solutionVersionArn": arn_of("solutionVersion", batch.solution),
        "jobInput.s3DataSource.path": BATCH_INPUT,
        "jobOutput.s3DataDestination.path": f"s3:batchOutput:{key}",
        "roleArn": ROLE,
    }
    if batch.filter:
        fill["filterArn"] = arn_of("filter", batch.filter)
    create = {
        "numResults": batch.num_results,
        "jobInput": {"s3DataSource": dict(encryption)},
        "jobOutput": {"s3DataDestination": dict(encryption)},
        "tags": tags,
    }
    entry = _run_owned(key, names.run_stem(config.prefix, key), create, fill)
    return {**entry, "solution": batch.solution}


# --- SageMaker ----------------------------------------------------------------------------------


def fm_hyperparameters(config: PipelineConfig) -> dict[str, Any]:
    """Factorization Machines' hyperparameters: `static` (strings, as the API takes them) and
    `fromManifest` (hyperparameter -> the dotted path of its value in prep's manifest.json)."""
    fm = config.factorization_machines
    return {
        "static": {
            "num_factors": str(fm.num_factors),
            "predictor_type": FM_PREDICTOR.get(fm.target, FM_PREDICTOR_DEFAULT),
            "epochs": str(fm.epochs),
            "mini_batch_size": str(fm.mini_batch_size),
        },
        "fromManifest": {"feature_dim": "fm.feature_dim"},
    }


def knn_hyperparameters(config: PipelineConfig) -> dict[str, Any]:
    """KNN's hyperparameters over the FM item rows [V_i, w_i] (num_factors + 1 features)."""
    fm = config.factorization_machines
    return {
        "static": {
            "feature_dim": str(fm.num_factors + 1),
            "k": str(fm.knn.k),
            "predictor_type": KNN_PREDICTOR,
            "index_type": fm.knn.index_type,
            "index_metric": KNN_METRIC,
        },
        "fromManifest": {"sample_size": "items"},
    }


def resolve_hyperparameters(spec: dict[str, Any], manifest: dict[str, Any]) -> dict[str, str]:
    """The complete string map for CreateTrainingJob, once prep's manifest.json is known."""
    resolved = dict(spec["static"])
    for name, path in spec["fromManifest"].items():
        value: Any = manifest
        for part in path.split("."):
            value = value[part]
        resolved[name] = str(value)
    return resolved


def sagemaker_contract(config: PipelineConfig) -> dict[str, Any]:
    stack, fm = config.prefix, config.factorization_machines
    return {
        "jobs": {label: names.run_stem(stack, label, "sagemaker") for label in SAGEMAKER_JOBS},
        "tags": names.sagemaker_tags(stack),
        "instanceTypes": {
            "processing": fm.processing_instance_type,
            "fm": fm.training_instance_type,
            "knn": fm.knn.instance_type,
            "knnTransform": fm.knn.transform_instance_type,
        },
        "fmInstanceCount": fm.training_instance_count,
        "transformInstanceCount": fm.knn.transform_instance_count,
        "volumeSizeGb": fm.volume_size_gb,
        "maxRuntimeSeconds": fm.max_runtime_seconds,
        "spot": {"enabled": fm.spot, "maxWaitSeconds": fm.spot_wait_seconds},
        "fm": fm_hyperparameters(config),
        "knn": knn_hyperparameters(config),
    }


# --- evaluation ---------------------------------------------------------------------------------


def evaluation_arguments(config: PipelineConfig) -> list[str]:
    """training/evaluate.py's options that come from the config (inputs are the run's paths).

    evaluate always scores each source with and without already-seen items, so
    evaluation.exclude_seen needs no flag.
    """
    return [arg for k in config.evaluation.k_values for arg in ("--k", str(k))]


def evaluation_contract(config: PipelineConfig) -> dict[str, Any]:
    recipes = {s.name: s.recipe for s in config.personalize.solutions}
    batches = {key: batch.solution for key, batch in _batches(config)}
    return {
        "args": evaluation_arguments(config),
        "kValues": list(config.evaluation.k_values),
        "personalize": [{"batchJob": key, "solution": s} for key, s in batches.items()],
        "notScored": [
            {"solution": name, "recipe": recipe, "why": f"{recipe} {NOT_SCORED_WHY}"}
            for name, recipe in recipes.items()
            if recipe not in USER_RECIPES
        ],
        "fmKnn": config.factorization_machines.enabled,
    }


# --- all of it ----------------------------------------------------------------------------------


def data_paths(config: PipelineConfig) -> dict[str, str]:
    """Where the prep job reads each table: a key or prefix inside the data bucket."""
    sources = {
        "interactions": config.data.interactions,
        "users": config.data.users,
        "items": config.data.items,
    }
    return {kind: source.path for kind, source in sources.items() if source is not None}


def contracts(config: PipelineConfig, *, partition: str = "aws") -> dict[str, Any]:
    """The state machine's input: everything the run needs from the config, as JSON."""
    return {
        "version": VERSION,
        "stack": config.prefix,
        "data": data_paths(config),
        "prep": prep_options(config),
        "personalize": personalize_plan(config, partition=partition),
        "sagemaker": sagemaker_contract(config),
        "evaluation": evaluation_contract(config),
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m recops.contracts CONFIG [PART]`: print the contracts (or one part) as JSON."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m recops.contracts CONFIG [prep|personalize|sagemaker|evaluation]")
        return 2
    result = contracts(load_config(args[0]))
    print(json.dumps(result[args[1]] if len(args) > 1 else result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
