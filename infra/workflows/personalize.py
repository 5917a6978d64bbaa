"""The Personalize state machine: plan → prep job → dataset group → schemas and datasets → imports
(in parallel) → filters and event tracker → each solution trained, scored and batch-inferred in a
Map (one failing recipe does not end the others) → evaluation job → campaigns and recommenders
when configured → notification. Every Personalize resource is made by the describe-or-create
Lambda step (lambdas/personalize) and polled here, so a re-run creates nothing new.

Variables (JSONata): `$run` (the plan: run id, contracts), `$plan` (its Personalize part),
`$paths` (the run's
S3 locations, see /work/briefs or README "Where a run's files land"), `$refs` (the plan's `fill`
references resolved so far), `$solutions` (what each solution's iteration ended with).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import layout
from infra.grants import kms_statement
from infra.nag import acknowledge_resources
from infra.workflows import jobs
from infra.workflows.core import RUN_SUFFIX, Guard, fail_with_failure, jsonata
from infra.workflows.outcome import failure_path
from infra.workflows.personalize_report import evaluate_states, finish_states
from infra.workflows.personalize_start import plan_states, prep_state
from infra.workflows.personalize_steps import FAMILIES, PersonalizeSteps, owned_arns
from recops import names
from recops.config import PipelineConfig


@dataclass(frozen=True)
class Resources:
    """What the workflow uses and does not own."""

    data: s3.IBucket
    artifacts: s3.IBucket
    personalize_role: iam.IRole
    sagemaker_role: iam.IRole
    steps: lambda_.IFunction
    planner: lambda_.IFunction
    topic: sns.ITopic
    code: jobs.TrainingCode
    images: jobs.Images
    kms_key: kms.IKey | None = None


class PersonalizeWorkflow(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: PipelineConfig, uses: Resources
    ) -> None:
        super().__init__(scope, construct_id)
        self.config, self.uses = config, uses
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("states.amazonaws.com"))
        self.steps = PersonalizeSteps(self, uses.steps, config.prefix)
        self.failed = failure_path(
            self,
            artifacts=uses.artifacts,
            runs_prefix=layout.ARTIFACTS.runs,
            topic=uses.topic,
            stack=config.prefix,
        )
        self.guard = Guard(self.failed, retry_on_not_ready=True)
        definition = (
            sfn.Chain.start(plan_states(self))
            .next(prep_state(self))
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
        log_group = logs.LogGroup(
            self,
            "Log",
            # the prefix Step Functions recommends: it keeps the account's CloudWatch Logs
            # resource policy short (https://docs.aws.amazon.com/step-functions/latest/dg/bp-cwl.html)
            log_group_name=f"/aws/vendedlogs/states/{config.prefix}-personalize",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.machine = sfn.StateMachine(
            self,
            "Machine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            query_language=sfn.QueryLanguage.JSONATA,
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL),
            timeout=Duration.days(7),
            comment=f"recops {config.prefix}: the Amazon Personalize workflow",
        )
        if uses.kms_key is not None:
            self.role.add_to_principal_policy(kms_statement(uses.kms_key))
        self._acknowledge()

    def _acknowledge(self) -> None:
        """Why each wildcard in the role is as narrow as the API allows."""
        uses, prefix = self.uses, self.config.prefix
        reasons = {
            f"Personalize resources are named {prefix}--<name>; the poll describes only "
            "this stack's own resources (event trackers: their ARN is a service-made id).": [
                arn for f in FAMILIES.values() for arn in owned_arns(self, f.arn_type, prefix)
            ],
            f"Processing jobs of this stack are named {prefix}--<job>-<run id>; the .sync "
            "integration creates, describes and stops only those.": [
                Stack.of(self).format_arn(
                    service="sagemaker", resource="processing-job", resource_name=f"{prefix}--*"
                )
            ],
            "LambdaInvoke grants the function and its versions and aliases (<function arn>:*); "
            "only the stack's own step functions are named.": [
                f"{uses.steps.function_arn}:*",
                f"{uses.planner.function_arn}:*",
            ],
            "The run writes its own files (options, context, failure record) under runs/ and "
            "reads its leaderboard under reports/ of the artifacts bucket only.": [
                uses.artifacts.arn_for_objects(f"{layout.ARTIFACTS.runs}*"),
                uses.artifacts.arn_for_objects(f"{layout.ARTIFACTS.reports}*"),
            ],
            "X-Ray tracing and CloudWatch PutMetricData have no resource-level permissions, so "
            "the API demands Resource '*'; PutMetricData is limited to the recops namespace.": [
                "*"
            ],
        }
        for reason, resources in reasons.items():
            acknowledge_resources(self.role, resources, reason)

    # --- the run -------------------------------------------------------------------------------

    def job(self, name: str, label: str, **kwargs: Any) -> sfn.CustomState:
        return jobs.processing_job(
            self,
            name,
            guard=self.guard,
            machine_role=self.role,
            job_role=self.uses.sagemaker_role,
            code=self.uses.code,
            image=self.uses.images.uri("sklearn"),
            job_name=jsonata(f"$run.contracts.sagemaker.jobs.`{label}` & {RUN_SUFFIX}"),
            instance_type=jsonata("$run.contracts.sagemaker.instanceTypes.processing"),
            tags=jsonata("$run.contracts.sagemaker.tags"),
            job_name_prefix=names.owned_prefix(self.config.prefix),
            **kwargs,
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
