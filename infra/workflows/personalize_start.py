"""How a Personalize run starts: the plan, the run's layout (`$paths`, `$plan`) and references
(`$refs`), the prep job, and, when the run's config asks for FM → KNN too, that workflow started
as a child on the same prepared data (`$fmExecution`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from infra.workflows.core import RUN_SUFFIX, jsonata
from infra.workflows.run_states import plan_state, prep_options_state, prep_state, run_paths

if TYPE_CHECKING:
    from infra.workflows.personalize import PersonalizeWorkflow


def start_states(self: PersonalizeWorkflow) -> sfn.Chain:
    layout_run = sfn.Pass.jsonata(
        self,
        "Lay out the run",
        assign={
            "plan": jsonata("$run.contracts.personalize"),
            "paths": jsonata(run_paths(self)),
            "fmExecution": jsonata("null"),
        },
    )
    role = self.uses.personalize_role.role_arn
    references = sfn.Pass.jsonata(
        self,
        "Resolve the run's references",
        assign={
            "refs": jsonata(
                f"$merge($append([{{'role:personalize': '{role}', "
                "'s3:batchInput': $paths.batchInput & 'users.json'}], $append("
                "$plan.imports.{'s3:import:' & key: $paths.import & $split(file, '/')[-1]}, "
                "$plan.batchInferenceJobs.{'s3:batchOutput:' & key: "
                "$paths.batchOutput & key & '/'})))"
            )
        },
    )
    return (
        plan_state(self)
        .next(layout_run)
        .next(references)
        .next(prep_options_state(self))
        .next(prep_state(self))
        .next(start_fm_knn(self))
    )


def start_fm_knn(self: PersonalizeWorkflow) -> sfn.IChainable:
    """The FM → KNN machine on this run's prepared data; waited for before evaluation."""
    if self.fm_knn is None:
        return sfn.Pass.jsonata(self, "No FM → KNN workflow in this stack")
    start = tasks.StepFunctionsStartExecution.jsonata(
        self,
        "Start FM → KNN",
        state_machine=self.fm_knn,
        name=jsonata(f"{RUN_SUFFIX} & '-fm'"),
        input=sfn.TaskInput.from_object({"parentRun": jsonata("$run")}),
        associate_with_parent=True,
        assign={"fmExecution": jsonata("$states.result.ExecutionArn")},
        outputs=jsonata("{}"),
    )
    self.guard.protect(start, "Start FM → KNN")
    choice = sfn.Choice.jsonata(self, "FM → KNN too?")
    choice.when(sfn.Condition.jsonata(jsonata("$run.contracts.evaluation.fmKnn = true")), start)
    choice.otherwise(sfn.Pass.jsonata(self, "Personalize only"))
    return choice.afterwards()
