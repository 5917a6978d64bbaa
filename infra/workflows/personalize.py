"""The Personalize state machine: plan → prep job → dataset group → schemas and datasets → imports
(in parallel) → filters and event tracker → each solution trained, scored and batch-inferred in a
Map (one failing recipe does not end the others) → evaluation job → campaigns and recommenders
when configured → notification. Every Personalize resource is made by the describe-or-create
Lambda step (lambdas/personalize) and polled here, so a re-run creates nothing new.

Variables (JSONata): `$run` (the plan: run id, contracts), `$plan` (its Personalize part),
`$suffix` (run id, and `-<redrive count>` after a redrive: run-owned names), `$paths` (the run's
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
from infra.nag import acknowledge_wildcards
from infra.workflows import jobs
from infra.workflows.core import Expr, Guard, fail_with_failure, jsonata, render
from infra.workflows.outcome import failure_path, notify
from infra.workflows.personalize_steps import FAMILIES, PersonalizeSteps, owned_arns
from recops import names, prices
from recops.config import PipelineConfig

IN, OUT = "/opt/ml/processing/input", "/opt/ml/processing/output"


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
            sfn.Chain.start(self._plan())
            .next(self._prep())
            .next(self._dataset_group())
            .next(self._each("Schemas", "schemas", "schema", "schema", poll=False))
            .next(self._each("Datasets", "datasets", "dataset", "dataset"))
            .next(self._each("Imports", "imports", "datasetImportJob", "datasetImportJob"))
            .next(self._each("Filters", "filters", "filter", "filter"))
            .next(self._event_tracker())
            .next(self._solutions())
            .next(self._evaluate())
            .next(self._each("Campaigns", "campaigns", "campaign", "campaign", served=True))
            .next(self._each("Recommenders", "recommenders", "recommender", "recommender"))
            .next(self._finish())
        )
        log_group = logs.LogGroup(
            self,
            "Log",
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
            acknowledge_wildcards(
                self.role, [iam.PolicyStatement(actions=["none:None"], resources=resources)], reason
            )

    # --- the run -------------------------------------------------------------------------------

    def _plan(self) -> sfn.IChainable:
        begin = sfn.Pass.jsonata(self, "Begin", assign={"run": jsonata("null")})
        plan = tasks.LambdaInvoke.jsonata(
            self,
            "Plan the run",
            lambda_function=self.uses.planner,
            payload=sfn.TaskInput.from_object(
                {
                    "input": jsonata("$states.input"),
                    "deployedConfig": self.config.model_dump(mode="json", exclude_none=True),
                    "executionName": jsonata("$states.context.Execution.Name"),
                }
            ),
            assign={"run": jsonata("$states.result.Payload")},
            outputs=jsonata("{'run': $states.result.Payload.runId}"),
            retry_on_service_exceptions=False,
        )
        self.guard.protect(plan, "Plan the run")
        run = "$run.runId"
        data, artifacts = self.uses.data.bucket_name, self.uses.artifacts.bucket_name
        a, d = layout.ARTIFACTS, layout.DATA
        paths = (
            "{"
            f"'prepOptions': '{a.runs}' & {run} & '/prep.json', "
            f"'runContext': '{a.runs}' & {run} & '/run.json', "
            f"'runFiles': 's3://{artifacts}/{a.runs}' & {run} & '/', "
            f"'raw': 's3://{data}/', "
            f"'prepared': 's3://{data}/{d.prepared}' & {run} & '/', "
            f"'import': 's3://{data}/{d.personalize_import}' & {run} & '/', "
            f"'batchInput': 's3://{artifacts}/{a.personalize_batch_input}' & {run} & '/', "
            f"'batchOutput': 's3://{artifacts}/{a.personalize_batch_output}' & {run} & '/', "
            f"'report': 's3://{artifacts}/{a.reports}' & {run} & '/', "
            f"'reportKey': '{a.reports}' & {run} & '/metrics.json'"
            "}"
        )
        layout_run = sfn.Pass.jsonata(
            self,
            "Lay out the run",
            assign={
                "plan": jsonata("$run.contracts.personalize"),
                "suffix": jsonata(
                    f"{run} & ($states.context.Execution.RedriveCount > 0 ? "
                    "'-' & $string($states.context.Execution.RedriveCount) : '')"
                ),
                "paths": jsonata(paths),
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
        options = tasks.CallAwsService.jsonata(
            self,
            "Write the prep options",
            service="s3",
            action="putObject",
            parameters={
                "Bucket": artifacts,
                "Key": jsonata("$paths.prepOptions"),
                "Body": jsonata("$string($run.contracts.prep)"),
                "ContentType": "application/json",
            },
            iam_resources=[self.uses.artifacts.arn_for_objects(f"{a.runs}*")],
        )
        self.guard.protect(options, "Write the prep options")
        return sfn.Chain.start(begin).next(plan).next(layout_run).next(references).next(options)

    def _job(self, name: str, label: str, **kwargs: Any) -> sfn.CustomState:
        return jobs.processing_job(
            self,
            name,
            guard=self.guard,
            machine_role=self.role,
            job_role=self.uses.sagemaker_role,
            code=self.uses.code,
            image=self.uses.images.uri("sklearn"),
            job_name=jsonata(f"$run.contracts.sagemaker.jobs.`{label}` & $suffix"),
            instance_type=jsonata("$run.contracts.sagemaker.instanceTypes.processing"),
            tags=jsonata("$run.contracts.sagemaker.tags"),
            job_name_prefix=names.owned_prefix(self.config.prefix),
            **kwargs,
        )

    def _prep(self) -> sfn.IChainable:
        tables = [
            self.uses.code.input(),
            jobs.s3_input(
                "interactions",
                Expr("$paths.raw & $run.contracts.data.interactions"),
                f"{IN}/interactions",
            ),
            jobs.s3_input("options", Expr("$paths.runFiles & 'prep.json'"), f"{IN}/options"),
        ]
        metadata = jobs.s3_input(
            Expr("$kind"),
            Expr("$paths.raw & $lookup($run.contracts.data, $kind)"),
            Expr(f"'{IN}/' & $kind"),
        )
        inputs = (
            f"$append({render(tables)}, $map($filter(['users', 'items'], function($k) "
            "{$exists($lookup($run.contracts.data, $k))}), function($kind) {"
            + render(metadata)
            + "}))"
        )
        arguments = [
            "--input", f"{IN}/interactions",
            "--options", f"{IN}/options/prep.json",
            "--output", f"{OUT}/prepared",
            "--personalize-output", f"{OUT}/personalize",
            "--batch-input-output", f"{OUT}/batch-input",
            "--users", f"{IN}/users",
            "--items", f"{IN}/items",
        ]  # fmt: skip
        outputs = [
            jobs.s3_output("prepared", jsonata("$paths.prepared"), f"{OUT}/prepared"),
            jobs.s3_output("personalize", jsonata("$paths.import"), f"{OUT}/personalize"),
            jobs.s3_output("batch-input", jsonata("$paths.batchInput"), f"{OUT}/batch-input"),
        ]
        return self._job(
            "Prepare the data",
            "prep",
            module="prep",
            arguments=arguments,
            inputs=jsonata(inputs),
            outputs=outputs,
        )

    # --- Personalize resources -----------------------------------------------------------------

    def _entry_event(self, entry: str, extra_refs: str = "{}") -> dict[str, str]:
        refs = f"$merge([$refs, {{'run:name': {entry}.stem & $suffix}}, {extra_refs}])"
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
        if poll:
            body = self.steps.ensure(f"{label} item", step, event, inner)
        else:
            body = self._ensure_only(f"{label} item", step, event, inner)
        done = sfn.Pass.jsonata(
            self,
            f"{label} item: done",
            outputs=jsonata("{'key': $states.context.Map.Item.Value.key, 'arn': $item_arn}"),
        )
        each.item_processor(body.next(done))
        return each

    def _ensure_only(self, label: str, step: str, event: dict, guard: Guard) -> sfn.Chain:
        call = tasks.LambdaInvoke.jsonata(
            self,
            f"{label}: ensure",
            lambda_function=self.uses.steps,
            payload=sfn.TaskInput.from_object({"step": step, **event}),
            assign={guard.var("arn"): jsonata("$states.result.Payload.arn")},
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
            assign={"solutions": jsonata("[$states.result]")},
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

    def _evaluate(self) -> sfn.IChainable:
        trained = "$solutions[$not($exists(failed))]"
        context = (
            "$string({'run': $run.runId, "
            f"'batchJobs': [{trained}.batches.{{'batchJob': key, 'solution': solution, "
            "'recipe': recipe}], "
            "'notScored': [$run.contracts.evaluation.notScored], "
            "'failed': [$solutions[$exists(failed)].{'solution': solution, "
            "'error': failed.error, 'cause': $string(failed.cause)}], "
            f"'solutionMetrics': $merge($append([{{}}], {trained}.{{solution: metrics}}))}})"
        )
        write = tasks.CallAwsService.jsonata(
            self,
            "Write the run context",
            service="s3",
            action="putObject",
            parameters={
                "Bucket": self.uses.artifacts.bucket_name,
                "Key": jsonata("$paths.runContext"),
                "Body": jsonata(context),
                "ContentType": "application/json",
            },
            iam_resources=[self.uses.artifacts.arn_for_objects(f"{layout.ARTIFACTS.runs}*")],
        )
        self.guard.protect(write, "Write the run context")
        batches = f"[{trained}.batches]"
        fixed = [
            self.uses.code.input(),
            jobs.s3_input("prepared", Expr("$paths.prepared"), f"{IN}/prepared"),
            jobs.s3_input(
                "interactions", Expr("$paths.import & 'interactions.csv'"), f"{IN}/interactions"
            ),
            jobs.s3_input("run", Expr("$paths.runFiles & 'run.json'"), f"{IN}/run"),
        ]
        batch = jobs.s3_input(
            Expr("'batch-' & $b.key"),
            Expr("$paths.batchOutput & $b.key & '/'"),
            Expr(f"'{IN}/personalize/' & $b.key"),
        )
        inputs = f"$append({render(fixed)}, $map({batches}, function($b) {{" + render(batch) + "}))"
        arguments = (
            f"$append(['--prepared', '{IN}/prepared', '--interactions', "
            f"'{IN}/interactions/interactions.csv', '--run-context', '{IN}/run/run.json', "
            f"'--output', '{OUT}/report'], $append($run.contracts.evaluation.args, "
            f"$reduce({batches}, function($all, $b) {{$append($all, ['--personalize-output', "
            f"'{IN}/personalize/' & $b.key])}}, [])))"
        )
        evaluate = self._job(
            "Evaluate",
            "evaluate",
            module="evaluate",
            arguments=jsonata(arguments),
            inputs=jsonata(inputs),
            outputs=[jobs.s3_output("report", jsonata("$paths.report"), f"{OUT}/report")],
        )
        read = tasks.CallAwsService.jsonata(
            self,
            "Read the leaderboard",
            service="s3",
            action="getObject",
            parameters={
                "Bucket": self.uses.artifacts.bucket_name,
                "Key": jsonata("$paths.reportKey"),
            },
            iam_resources=[self.uses.artifacts.arn_for_objects(f"{layout.ARTIFACTS.reports}*")],
            assign={"report": jsonata("$parse($states.result.Body)")},
            outputs=jsonata("{}"),
        )
        self.guard.protect(read, "Read the leaderboard")
        return sfn.Chain.start(write).next(evaluate).next(read)

    # --- the end -------------------------------------------------------------------------------

    def _finish(self) -> sfn.IChainable:
        stack = self.config.prefix
        failed = "$solutions[$exists(failed)]"
        status = f"($count({failed}) > 0 ? 'PARTIAL' : 'COMPLETE')"
        leaders = (
            "$join($map($report.leaderboard[[0..9]], function($r, $i) {$string($i + 1) & '. ' & "
            "$r.name & '  ' & $report.rankedBy & '=' & $formatNumber($lookup($r.metrics, "
            "$report.rankedBy), '0.0000') & ($r.beatsBaseline ? '' : '  (does not beat the "
            "baseline)')}), '\\n')"
        )
        failures = (
            f"$join({failed}.('- ' & solution & ': ' & failed.error & ': ' & "
            "$string(failed.cause)), '\\n')"
        )
        table = prices.load()
        hourly = table.prices["personalize.training_hour"].usd
        hours = "$sum($solutions[$type(trainingHours) = 'number'].trainingHours)"
        cost = (
            f"'\\n\\nPersonalize training: ' & $formatNumber({hours}, '0.00') & ' training "
            f"hours x ${hourly}/h = $' & $formatNumber({hours} * {hourly}, '0.00') & ' (recipes "
            "billed by the hour; -v2 recipes bill per interaction and batch jobs per "
            f"recommendation: recops cost ' & $run.runId & ' has the whole run. {table.region} "
            f"list prices read {table.read}, see the README)'"
        )
        message = (
            f"'recops {stack}: run ' & $run.runId & ' ' & {status} & '.\\n\\nLeaderboard (' & "
            f"$report.rankedBy & '):\\n' & {leaders} & ($count({failed}) > 0 ? '\\n\\nFailed "
            f"recipes:\\n' & {failures} : '') & '\\n\\nReport: ' & $paths.report & "
            f"'report.html' & {cost} & '\\nExecution: ' & $states.context.Execution.Id"
        )
        detail = (
            f"{{'stack': '{stack}', 'run': $run.runId, 'status': {status}, 'report': "
            f"$paths.report, 'failed': [{failed}.{{'solution': solution, 'error': failed.error, "
            "'cause': $string(failed.cause)}], 'execution': $states.context.Execution.Id}"
        )
        publish, event = notify(
            self,
            "Finished",
            topic=self.uses.topic,
            subject=f"'recops {stack} run ' & $run.runId & ': ' & {status}",
            message=message,
            detail=detail,
        )
        self.guard.protect(publish, "Finished: notify")
        self.guard.protect(event, "Finished: event")
        partial = sfn.Fail.jsonata(
            self,
            "Some recipes failed",
            error="RecipesFailed",
            cause=jsonata(f"'the leaderboard is partial; failed: ' & {failures}"),
        )
        done = sfn.Succeed.jsonata(
            self,
            "Run complete",
            outputs=jsonata(
                "{'run': $run.runId, 'status': 'COMPLETE', 'report': $paths.report, "
                "'leader': $report.leaderboard[0].name}"
            ),
        )
        check = sfn.Choice.jsonata(self, "All recipes trained?")
        check.when(sfn.Condition.jsonata(jsonata(f"$count({failed}) > 0")), partial)
        check.otherwise(done)
        return sfn.Chain.start(publish).next(event).next(check)
