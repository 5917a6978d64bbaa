"""The Personalize state machine: plan → prep job → (the FM → KNN machine started on the same
prepared data, when the run's config enables it) → dataset group → schemas and datasets →
imports (in parallel) → filters and event tracker → each solution trained, scored and
batch-inferred in a Map (one failing recipe does not end the others) → the FM → KNN child polled
to its end → evaluation job (one leaderboard) → campaigns and recommenders when configured →
notification. Every Personalize resource is made by the describe-or-create Lambda step
(lambdas/personalize) and polled here, so a re-run creates nothing new.

Variables (JSONata): `$run` (the plan: run id, contracts), `$plan` (its Personalize part),
`$paths` (the run's S3 locations: run_states.run_paths, README "Where a run's files land"),
`$refs` (the plan's `fill` references resolved so far), `$solutions` (what each solution's
iteration ended with), `$fmExecution`/`$fmOutput`/`$fmFailed` (the FM → KNN child).
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.workflows.core import RUN_SUFFIX, Guard, fail_with_failure, jsonata
from infra.workflows.personalize_report import evaluate_states, finish_states
from infra.workflows.personalize_start import start_states
from infra.workflows.personalize_steps import FAMILIES, PersonalizeSteps, owned_arns
from infra.workflows.run import Resources, RunWorkflow, execution_arns
from recops.config import PipelineConfig

__all__ = ["PersonalizeWorkflow", "Resources"]


class PersonalizeWorkflow(RunWorkflow):
    """`fm_knn`: the FM → KNN machine this one starts on its prepared data when the run's
    config enables it (None: this stack has none)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        uses: Resources,
        fm_knn: sfn.IStateMachine | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            config=config,
            uses=uses,
            child=None if fm_knn is None else (fm_knn, "$fmExecution"),
        )
        if uses.steps is None or uses.personalize_role is None:
            raise ValueError("the Personalize workflow needs uses.steps and uses.personalize_role")
        self.fm_knn = fm_knn
        self.steps = PersonalizeSteps(self, uses.steps, config.prefix)
        definition = (
            start_states(self)
            .next(self._dataset_group())
            .next(self._each("Schemas", "schemas", "schema", "schema", poll=False))
            .next(self._each("Datasets", "datasets", "dataset", "dataset"))
            .next(self._each("Imports", "imports", "datasetImportJob", "datasetImportJob"))
            .next(self._each("Filters", "filters", "filter", "filter"))
            .next(self._event_tracker())
            .next(self._solutions())
            .next(evaluate_states(self))
            .next(self._each("Campaigns", "campaigns", "campaign", "campaign", served=True))
            .next(self._each("Recommenders", "recommenders", "recommender", "recommender"))
            .next(finish_states(self))
        )
        self.build_machine(definition, kind="personalize", what="the Amazon Personalize workflow")
        prefix = config.prefix
        self.acknowledge(
            {
                f"Personalize resources are named {prefix}--<name>; the poll describes only "
                "this stack's own resources (event trackers: their ARN is a service-made id).": [
                    arn for f in FAMILIES.values() for arn in owned_arns(self, f.arn_type, prefix)
                ],
                "The FM → KNN child run is polled (DescribeExecution) and, when this run fails, "
                "stopped (StopExecution) on the executions of the stack's own FM → KNN machine "
                "only.": ([] if fm_knn is None else [execution_arns(fm_knn)]),
            }
        )

    # --- Personalize resources -----------------------------------------------------------------

    def _entry_event(self, entry: str, extra_refs: str = "{}") -> dict[str, str]:
        refs = f"$merge([$refs, {{'run:name': {entry}.stem & {RUN_SUFFIX}}}, {extra_refs}])"
        return {"entry": jsonata(entry), "refs": jsonata(refs)}

    def _dataset_group(self) -> sfn.IChainable:
        chain = self.steps.ensure(
            "Dataset group", "datasetGroup", self._entry_event("$plan.datasetGroup"), self.guard
        )
        keep = sfn.Pass.jsonata(
            self,
            "Dataset group: remember",
            assign={
                "refs": jsonata(
                    "$merge([$refs, {'arn:datasetGroup:' & $plan.datasetGroup.key: $arn}])"
                )
            },
        )
        return chain.next(keep)

    def _each(
        self,
        label: str,
        part: str,
        step: str,
        family: str,
        *,
        poll: bool = True,
        served: bool = False,
    ) -> sfn.IChainable:
        """One step per plan entry of `part`, in parallel; their ARNs join `$refs`."""
        items = f"$plan.{part}"
        if served:  # campaigns only for solutions that trained in this run
            items = f"$plan.{part}[$exists($lookup($refs, fill.solutionVersionArn))]"
        each = sfn.Map.jsonata(
            self,
            label,
            items=sfn.ProvideItems.jsonata(jsonata(f"[{items}]")),
            max_concurrency=4,
            assign={
                "refs": jsonata(
                    f"$merge($append([$refs], $states.result.{{'arn:{family}:' & key: arn}}))"
                )
            },
        )
        each.add_catch(
            self.failed,
            errors=["States.ALL"],
            assign={
                "failure": jsonata(
                    f"{{'state': '{label}', 'error': $states.errorOutput.Error, 'cause': $states.errorOutput.Cause}}"
                )
            },
        )
        inner = Guard(
            fail_with_failure(self, f"{label} item: failed", "item_failure"),
            retry_on_not_ready=True,
            prefix="item_",
        )
        event = self._entry_event("$states.input")
        # The Map's item is read once, by the iteration's first state (AWS gives the context
        # object's Map.Item to ItemSelector only).
        first = {"item_key": jsonata("$states.input.key")}
        if poll:
            body = self.steps.ensure(f"{label} item", step, event, inner, first=first)
        else:
            body = self._ensure_only(f"{label} item", step, event, inner, first=first)
        done = sfn.Pass.jsonata(
            self,
            f"{label} item: done",
            outputs=jsonata("{'key': $item_key, 'arn': $item_arn}"),
        )
        each.item_processor(body.next(done))
        return each

    def _ensure_only(
        self, label: str, step: str, event: dict, guard: Guard, *, first: dict
    ) -> sfn.Chain:
        call = tasks.LambdaInvoke.jsonata(
            self,
            f"{label}: ensure",
            lambda_function=self.uses.steps,
            payload=sfn.TaskInput.from_object({"step": step, **event}),
            assign={**first, guard.var("arn"): jsonata("$states.result.Payload.arn")},
            retry_on_service_exceptions=False,
        )
        guard.protect(call, f"{label}: ensure")
        return sfn.Chain.start(call)

    def _event_tracker(self) -> sfn.IChainable:
        chain = self.steps.ensure(
            "Event tracker", "eventTracker", self._entry_event("$plan.eventTracker"), self.guard
        )
        keep = sfn.Pass.jsonata(
            self,
            "Event tracker: remember",
            assign={
                "refs": jsonata(
                    "$merge([$refs, {'arn:eventTracker:' & $plan.eventTracker.key: $arn}])"
                ),
                "tracker": jsonata("$arn"),
            },
        )
        skip = sfn.Pass.jsonata(self, "No event tracker")
        choice = sfn.Choice.jsonata(self, "Event tracker?")
        choice.when(
            sfn.Condition.jsonata(jsonata("$exists($plan.eventTracker.name)")), chain.next(keep)
        )
        choice.otherwise(skip)
        return choice.afterwards()

    # --- solutions, each in its own iteration ---------------------------------------------------

    def _solutions(self) -> sfn.IChainable:
        from infra.workflows.personalize_solutions import solution_iteration

        solutions = sfn.Map.jsonata(
            self,
            "Solutions",
            items=sfn.ProvideItems.jsonata(jsonata("[$plan.solutions]")),
            max_concurrency=0,
            assign={
                "solutions": jsonata("[$states.result]"),
                # what campaigns need: the versions trained in this run
                "refs": jsonata(
                    "$merge($append([$refs], $states.result[$not($exists(failed))].{"
                    "'arn:solution:' & solution: solutionArn, "
                    "'arn:solutionVersion:' & solution: versionArn}))"
                ),
            },
        )
        solutions.add_catch(
            self.failed,
            errors=["States.ALL"],
            assign={
                "failure": jsonata(
                    "{'state': 'Solutions', 'error': $states.errorOutput.Error, 'cause': $states.errorOutput.Cause}"
                )
            },
        )
        solutions.item_processor(solution_iteration(self, self.steps))
        return solutions
