"""The state machine's first state: which config this run uses, what it receives, and whether
Amazon Personalize would accept it, decided before anything is billed.

Event (the state machine passes the execution input as it came, the deployed config, and the
execution's name):

    {"input": {} | {"config": {...}} | {"configObject": {"bucket": B, "key": K}},
     "deployedConfig": {...the stack's config...}, "executionName": "..."}

Returns `{"runId", "stack", "contracts", "checks"}`: the run id (`recops.names.run_id`), the
stack prefix, `recops.contracts.contracts(config)` for every later state, and what was checked
with its counts (README.md here). Refusals are the errors of `errors.py`, each naming the field
or file and the fix. The config is validated by the same model as at synth and in the CLI
(`recops.config.parse_config`), and must be this stack's (its `prefix`): another stack's config
would name, and reuse, another stack's resources.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from botocore.config import Config
from botocore.exceptions import ClientError, UnknownRegionError

from recops import contracts, names
from recops.config import ConfigError, PipelineConfig, parse_config

from . import data_checks, quotas
from .errors import (
    DataRejectedError,
    InvalidConfigError,
    QuotaExceededError,
    RegionNotSupportedError,
)

SERVICE = "recops-runs"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
INPUT_KEYS = ("config", "configObject")
INPUT_RULE = (
    'start the execution with {} (the deployed config), {"config": {...}} (a config object) '
    'or {"configObject": {"bucket": "<the data bucket>", "key": "train/<name>.json"}}'
)
REFUSALS = (InvalidConfigError, DataRejectedError, RegionNotSupportedError, QuotaExceededError)


@dataclass
class Clients:
    """The AWS clients the plan uses; standard retries absorb throttling."""

    s3: Any
    personalize: Any
    service_quotas: Any

    @classmethod
    def default(cls) -> Clients:
        config = Config(retries={"mode": "standard"})
        return cls(
            s3=boto3.client("s3", config=config),
            personalize=boto3.client("personalize", config=config),
            service_quotas=boto3.client("service-quotas", config=config),
        )


def plan(event: dict, *, data_bucket: str, region: str, clients: Clients) -> dict[str, Any]:
    """The run's plan, or the refusal (errors.py) that says what to fix."""
    deployed = _parse(event.get("deployedConfig"), "the deployed config (deployedConfig)")
    config, source = choose_config(event.get("input"), deployed, clients.s3, data_bucket)
    if config.prefix != deployed.prefix:
        raise InvalidConfigError(
            f"{source}: prefix {config.prefix!r} is not this stack's ({deployed.prefix!r}); a "
            "config runs only in the stack it names, since the prefix names every resource. Set "
            f"prefix to {deployed.prefix!r}, or deploy a stack for {config.prefix!r} "
            "(cdk deploy -c config=FILE) and start the run there"
        )
    run = _run_id(event.get("executionName"))
    partition = partition_of(region)
    planned = contracts.contracts(config, partition=partition)
    checks: dict[str, Any] = {"config": source}
    if config.personalize.enabled:
        checks["region"] = check_region(region)
    checks["data"] = data_checks.check_data(
        clients.s3, data_bucket, config, need_minimums=trains_personalize(config)
    )
    if config.personalize.enabled:
        checks["quotas"] = quotas.check_quotas(
            clients.personalize, clients.service_quotas, planned["personalize"], region
        )
    return {"runId": run, "stack": config.prefix, "contracts": planned, "checks": checks}


def choose_config(
    given: object, deployed: PipelineConfig, s3: Any, data_bucket: str
) -> tuple[PipelineConfig, str]:
    """(the config of this run, where it came from), from the execution input."""
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise InvalidConfigError(f"the execution input must be a JSON object: {INPUT_RULE}")
    unknown = sorted(set(given) - set(INPUT_KEYS))
    if unknown or len(given) > 1:
        raise InvalidConfigError(
            f"the execution input has {sorted(given)}"
            + (f" ({unknown} unknown)" if unknown else "")
            + f": {INPUT_RULE}"
        )
    if "config" in given:
        source = "the execution input's config"
        return _parse(given["config"], source), source
    if "configObject" in given:
        bucket, key = _object_location(given["configObject"], data_bucket)
        source = f"s3://{bucket}/{key}"
        return _parse(read_json(s3, bucket, key), source), source
    return deployed, "the deployed config"


def _object_location(location: object, data_bucket: str) -> tuple[str, str]:
    if not (
        isinstance(location, dict)
        and set(location) == {"bucket", "key"}
        and all(isinstance(v, str) and v for v in location.values())
    ):
        raise InvalidConfigError(f"configObject must be {{'bucket', 'key'}}: {INPUT_RULE}")
    if location["bucket"] != data_bucket:
        raise InvalidConfigError(
            f"configObject.bucket {location['bucket']!r} is not the stack's data bucket "
            f"({data_bucket!r}): upload the config to s3://{data_bucket}/train/<name>.json"
        )
    return location["bucket"], location["key"]


def read_json(s3: Any, bucket: str, key: str) -> object:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404"):
            raise InvalidConfigError(
                f"s3://{bucket}/{key}: no such object; upload the config there, or start with "
                "another configObject"
            ) from None
        raise
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidConfigError(f"s3://{bucket}/{key}: not valid JSON: {err}") from None


def _parse(raw: object, source: str) -> PipelineConfig:
    try:
        return parse_config(raw, source=source)
    except ConfigError as err:
        raise InvalidConfigError(str(err)) from None


def _run_id(execution_name: object) -> str:
    try:
        return names.run_id(str(execution_name or ""))
    except ValueError as err:
        raise InvalidConfigError(str(err)) from None


def trains_personalize(config: PipelineConfig) -> bool:
    """True when the run trains Personalize models, so the data must meet their minimums."""
    personalize = config.personalize
    return personalize.enabled and bool(personalize.solutions or personalize.recommenders)


@cache
def _endpoints() -> boto3.session.Session:
    """A session only for botocore's endpoint data (loaded once: it is a large file)."""
    return boto3.session.Session()


def partition_of(region: str) -> str:
    try:
        return _endpoints().get_partition_for_region(region)
    except UnknownRegionError:  # no partition has it; check_region then refuses it
        return "aws"


def check_region(region: str) -> dict[str, Any]:
    """The region offers Personalize, by botocore's endpoint data (the runtime's botocore)."""
    offered = _endpoints().get_available_regions("personalize", partition_name=partition_of(region))
    if region not in offered:
        raise RegionNotSupportedError(
            f"Amazon Personalize is not offered in {region} (botocore's endpoint data), where "
            f"this stack is deployed: deploy the stack in a region that offers it ("
            f"{', '.join(sorted(offered))}), or set personalize.enabled to false"
        )
    return {"region": region, "offersPersonalize": True}


_clients: list[Clients] = []  # created on first use, reused while the environment is warm


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict, context: Any) -> dict[str, Any]:
    if not _clients:
        _clients.append(Clients.default())
    try:
        result = plan(
            event,
            data_bucket=os.environ["DATA_BUCKET"],
            region=os.environ["AWS_REGION"],
            clients=_clients[0],
        )
    except REFUSALS as err:
        logger.error("run refused", extra={"error": type(err).__name__, "reason": str(err)})
        raise
    logger.info("run planned", extra={"runId": result["runId"], "checks": result["checks"]})
    return result
