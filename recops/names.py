"""Every AWS name the product gives, decided once, and the selector teardown finds them by.

Pure functions (no AWS calls, no pydantic): the CDK app, the `recops` CLI and the Lambda steps
all name things here, so a name is never spelled twice.

**Ownership.** Every name starts with the stack's prefix and `SEPARATOR` ("--"). The prefix is
3-20 lower-case letters, digits and single hyphens and cannot contain "--" (the config model
refuses it), so `recops-demo--x` can never be read as a name of stack `recops-demo-eu` and no
name of `recops-demo-eu--…` starts with `recops-demo--`: `owned_by(name, stack)` is exact. A
hyphen pair is used rather than "_" because SageMaker job names allow only letters, digits and
hyphens, and one separator serves both services. Every resource whose API takes tags also
carries `STACK_TAG_KEY` = the stack (`personalize_tags`, `sagemaker_tags`); schemas take no
tags, so teardown finds them by `owned_by`.

**Config-owned resources** (dataset group, schemas, datasets, solutions, filters, event
tracker, campaigns, recommenders) have stable names, `<stack>--<label>`, so a re-run describes
instead of creating. A schema cannot change once created, so its name carries a hash of its
content: a changed schema is a new schema, never a conflict.

**Run-owned resources** (import jobs, solution versions, batch jobs, SageMaker jobs) are named
`<stem><run id>` or, for a later attempt, `<stem><run id>-<attempt>`, where the stem
`<stack>--<label>-` is fixed at synth (`run_stem`) and the rest is known only at run time:

- the run id is the last `RUN_ID_LENGTH` (12) characters of the Step Functions execution name
  (`run_id`). An execution started without a name (the CLI, EventBridge, Scheduler, the
  console) is named by a UUID, whose last group is 12 random hex digits. A hand-picked
  execution name must end in 12 lower-case letters or digits; anything else is refused rather
  than guessed at, since two runs sharing an id would share (and reuse) their jobs.
- the attempt is the execution's `RedriveCount` (0 on the first drive, then 1, 2, …): a
  redriven execution re-runs its failed steps, and SageMaker refuses a job name that was ever
  used, so a redrive gets new names. Within one attempt a step that is retried keeps its name
  on purpose: describe-or-create then finds what the first try created.

In the state machine (JSONata) the same name is
`$stem & $substring($states.context.Execution.Name, -12) & ($states.context.Execution.RedriveCount > 0 ? "-" & $string($states.context.Execution.RedriveCount) : "")`.

Every name is checked against the service's pattern and length before it is returned, and a
label too long for the budget is cut and given a hash of the whole label (`fit`), so distinct
long labels stay distinct and the same label always gives the same name.
"""

from __future__ import annotations

import hashlib
import json
import re

SEPARATOR = "--"
MAX_NAME = 63  # Personalize resource names and SageMaker job/model names alike
RUN_ID_LENGTH = 12
MAX_ATTEMPT = 1000  # Step Functions redrives an execution at most 1,000 times
# "-" + the largest attempt: the room a run-owned name keeps after its run id.
ATTEMPT_ROOM = 1 + len(str(MAX_ATTEMPT))
SCHEMA_HASH_LENGTH = 10
LABEL_HASH_LENGTH = 6
STACK_TAG_KEY = "recops:stack"

PREFIX_MIN, PREFIX_MAX = 3, 20
PREFIX_RULE = (
    f"{PREFIX_MIN} to {PREFIX_MAX} characters: lower-case letters a-z, digits 0-9 and hyphens; "
    "it starts with a letter, ends with a letter or digit, and has no two hyphens in a row "
    f"('{SEPARATOR}' separates the prefix from the rest of every resource name)"
)
_PREFIX = re.compile(r"[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]")

# The services' own patterns (botocore's Personalize `Name` and SageMaker `*JobName` shapes).
PERSONALIZE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]*")
SAGEMAKER_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
PERSONALIZE_RULE = (
    "1 to 63 characters: letters, digits, '-' and '_', starting with a letter or digit"
)
SAGEMAKER_RULE = (
    "1 to 63 characters: letters, digits and hyphens, starting and ending with a letter or digit"
)
_RUN_ID = re.compile(rf"[a-z0-9]{{{RUN_ID_LENGTH}}}")


def prefix_problem(prefix: str) -> str | None:
    """Why the stack prefix cannot be used, in words, or None when it can."""
    if PREFIX_MIN <= len(prefix) <= PREFIX_MAX and _PREFIX.fullmatch(prefix):
        return None
    reasons = [
        reason
        for broken, reason in (
            (not PREFIX_MIN <= len(prefix) <= PREFIX_MAX, f"it has {len(prefix)} characters"),
            (re.search(r"[^a-z0-9-]", prefix), "it has characters other than a-z, 0-9 and '-'"),
            (not re.match(r"[a-z]", prefix), "it does not start with a letter"),
            (prefix.endswith("-"), "it ends with a hyphen"),
            (SEPARATOR in prefix, "it has two hyphens in a row"),
        )
        if broken
    ]
    return f"{prefix!r} is not a valid prefix ({'; '.join(reasons)}): use {PREFIX_RULE}"


def check_prefix(prefix: str) -> str:
    problem = prefix_problem(prefix)
    if problem:
        raise ValueError(problem)
    return prefix


# --- ownership ----------------------------------------------------------------------------------


def owned_prefix(stack: str) -> str:
    """What every name of the stack starts with; the IAM and teardown selector."""
    return check_prefix(stack) + SEPARATOR


def owned_by(name: str, stack: str) -> bool:
    """True when the name was given by this stack (and by no other stack)."""
    return name.startswith(owned_prefix(stack))


def personalize_tags(stack: str) -> list[dict[str, str]]:
    return [{"tagKey": STACK_TAG_KEY, "tagValue": check_prefix(stack)}]


def sagemaker_tags(stack: str) -> list[dict[str, str]]:
    return [{"Key": STACK_TAG_KEY, "Value": check_prefix(stack)}]


# --- checks -------------------------------------------------------------------------------------


def check_personalize_name(name: str) -> str:
    if len(name) > MAX_NAME or not PERSONALIZE_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid Personalize name: {PERSONALIZE_RULE}")
    return name


def check_sagemaker_name(name: str) -> str:
    if len(name) > MAX_NAME or not SAGEMAKER_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid SageMaker job or model name: {SAGEMAKER_RULE}")
    return name


CHECKS = {"personalize": check_personalize_name, "sagemaker": check_sagemaker_name}


def short_hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fit(label: str, budget: int) -> str:
    """The label, or when longer than the budget its start and a hash of all of it."""
    if len(label) <= budget:
        return label
    keep = budget - 1 - LABEL_HASH_LENGTH
    if keep < 1:
        raise ValueError(f"no room for label {label!r}: only {budget} characters left")
    return f"{label[:keep].rstrip('-_')}-{short_hash(label, LABEL_HASH_LENGTH)}"


# --- config-owned names -------------------------------------------------------------------------


def config_owned(stack: str, label: str) -> str:
    """A stable Personalize name: `<stack>--<label>`."""
    budget = MAX_NAME - len(owned_prefix(stack))
    return check_personalize_name(owned_prefix(stack) + fit(label, budget))


def schema_name(stack: str, label: str, schema: dict, domain: str | None = None) -> str:
    """`<stack>--<label>-<hash of the schema and domain>`: a changed schema gets a new name."""
    content = json.dumps(
        {"schema": schema, "domain": domain}, sort_keys=True, separators=(",", ":")
    )
    suffix = "-" + short_hash(content, SCHEMA_HASH_LENGTH)
    budget = MAX_NAME - len(owned_prefix(stack)) - len(suffix)
    return check_personalize_name(owned_prefix(stack) + fit(label, budget) + suffix)


# --- run-owned names ----------------------------------------------------------------------------


def run_stem(stack: str, label: str, service: str = "personalize") -> str:
    """`<stack>--<label>-`, the label cut so that any run id and attempt still fit."""
    budget = MAX_NAME - len(owned_prefix(stack)) - 1 - RUN_ID_LENGTH - ATTEMPT_ROOM
    stem = f"{owned_prefix(stack)}{fit(label, budget)}-"
    CHECKS[service](stem + "0" * RUN_ID_LENGTH + f"-{MAX_ATTEMPT}")  # the longest it will get
    return stem


def run_id(execution_name: str) -> str:
    """The run's id: the last 12 characters of the execution name (a UUID's last group)."""
    tail = execution_name[-RUN_ID_LENGTH:]
    if not _RUN_ID.fullmatch(tail):
        raise ValueError(
            f"execution name {execution_name!r} must end in {RUN_ID_LENGTH} lower-case letters "
            "or digits (they name the run's jobs); start the execution without a name to get a "
            "UUID, or end the name with 12 such characters"
        )
    return tail


def run_owned(stem: str, run: str, attempt: int = 0, service: str = "personalize") -> str:
    """A run's resource name: stem + run id, and `-<attempt>` after a redrive."""
    if not _RUN_ID.fullmatch(run):
        raise ValueError(f"run id {run!r} must be {RUN_ID_LENGTH} lower-case letters or digits")
    if not 0 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt {attempt} must be 0..{MAX_ATTEMPT} (the redrive count)")
    name = stem + run + (f"-{attempt}" if attempt else "")
    return CHECKS[service](name)
