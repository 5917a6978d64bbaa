"""Which state machine a run starts on, and the config it runs with.

One rule for `recops start --workflow`, `recops cost --workflow` and the upload trigger (which
chooses as `auto`): the Personalize machine runs prep once and, when the config's
`factorization_machines.enabled`, starts the FM → KNN machine as its child; the FM → KNN machine
started alone runs FM → KNN only. `personalize` and `both` say so in the run's config
(`factorization_machines.enabled` false / true), which is validated again by the config model,
so nothing starts that the plan would refuse.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from recops.config import PipelineConfig, parse_config

Machine = Literal["personalize", "fm-knn"]
Workflow = Literal["auto", "personalize", "fm-knn", "both"]
PERSONALIZE: Machine = "personalize"
FM_KNN: Machine = "fm-knn"
AUTO, BOTH = "auto", "both"
WORKFLOWS: tuple[Workflow, ...] = ("auto", "personalize", "fm-knn", "both")
# The machine each workflow but `auto` starts, whatever the config says.
MACHINE_OF: dict[str, Machine] = {"personalize": PERSONALIZE, "both": PERSONALIZE, "fm-knn": FM_KNN}


class WorkflowError(ValueError):
    """The config and the workflow asked for do not go together; the message says what to do."""


@dataclass(frozen=True)
class Choice:
    """The machine to start and the config to start it with."""

    machine: Machine
    config: PipelineConfig
    raw: dict[str, Any]  # the config as JSON, rewritten when the workflow says so
    rewritten: bool  # raw differs from the config given

    def what_runs(self) -> PipelineConfig:
        """The config as far as the run goes: the FM → KNN machine alone runs no Personalize
        (what a cost estimate of this choice prices)."""
        if self.machine == PERSONALIZE:
            return self.config
        fm = self.config.factorization_machines.model_copy(update={"enabled": True})
        personalize = self.config.personalize.model_copy(update={"enabled": False})
        return self.config.model_copy(
            update={"personalize": personalize, "factorization_machines": fm}
        )


def choose(raw: dict[str, Any], workflow: str = AUTO, source: str = "<config>") -> Choice:
    """The machine for `workflow` and the config as it runs there; ConfigError when the config
    (as rewritten) is refused by the model, WorkflowError when the workflow cannot run it."""
    if workflow not in WORKFLOWS:
        raise WorkflowError(f"unknown workflow {workflow!r}: use one of {', '.join(WORKFLOWS)}")
    config = parse_config(raw, source=source)
    personalize, fm = config.personalize.enabled, config.factorization_machines.enabled
    if workflow == AUTO:
        if personalize:
            return Choice(PERSONALIZE, config, raw, rewritten=False)
        if fm:
            return Choice(FM_KNN, config, raw, rewritten=False)
        raise WorkflowError(
            f"{source}: personalize.enabled and factorization_machines.enabled are both false: "
            "nothing to run; enable one (or run FM → KNN alone: recops start --workflow fm-knn)"
        )
    if workflow == FM_KNN:
        # The FM → KNN machine runs FM → KNN whatever `enabled` says; the rules the model
        # checks for an enabled FM (a target's ratings column) must hold all the same.
        _with_fm(raw, True, source)
        return Choice(FM_KNN, config, raw, rewritten=False)
    if not personalize:
        raise WorkflowError(
            f"{source}: personalize.enabled is false, so --workflow {workflow} has no Personalize "
            "run to start: use --workflow fm-knn (or enable personalize)"
        )
    wanted = workflow == BOTH
    if fm == wanted:
        return Choice(PERSONALIZE, config, raw, rewritten=False)
    rewritten = _with_fm(raw, wanted, source)
    return Choice(PERSONALIZE, parse_config(rewritten, source=source), rewritten, rewritten=True)


def _with_fm(raw: dict[str, Any], enabled: bool, source: str) -> dict[str, Any]:
    """The config with `factorization_machines.enabled` set, validated by the model."""
    changed = copy.deepcopy(raw)
    changed.setdefault("factorization_machines", {})["enabled"] = enabled
    parse_config(
        changed, source=f"{source} with factorization_machines.enabled {str(enabled).lower()}"
    )
    return changed
