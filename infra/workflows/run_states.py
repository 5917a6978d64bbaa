"""The states every run has, whichever workflow: plan (config, contracts, refusals before
anything is billed), the run's layout in S3 (`$paths`), the prep job, the run context, the
evaluation job and its leaderboard read back (`$report`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from infra import layout
from infra.workflows import jobs
from infra.workflows.core import Expr, jsonata, render
from infra.workflows.outcome import notify

if TYPE_CHECKING:
    from infra.workflows.run import RunWorkflow

IN, OUT = "/opt/ml/processing/input", "/opt/ml/processing/output"
# The top 10 of `$report`, one line each, as a notification shows them.
LEADERBOARD_LINES = (
    "$join($map($report.leaderboard[[0..9]], function($r, $i) {$string($i + 1) & '. ' & "
    "$r.name & '  ' & $report.rankedBy & '=' & ($type($lookup($r.metrics, "
    "$report.rankedBy)) = 'number' ? $formatNumber($lookup($r.metrics, "
    "$report.rankedBy), '0.0000') : 'n/a') & ($r.beatsBaseline ? '' : '  (does not beat the "
    "baseline)')}), '\\n')"
)


def plan_state(self: RunWorkflow) -> sfn.Chain:
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
    return sfn.Chain.start(begin).next(plan)


def run_paths(self: RunWorkflow) -> str:
    """`$paths`: where this run's files land (README, "Where a run's files land")."""
    run = "$run.runId"
    data, artifacts = self.uses.data.bucket_name, self.uses.artifacts.bucket_name
    a, d = layout.ARTIFACTS, layout.DATA
    return (
        "{"
        f"'prepOptions': '{a.runs}' & {run} & '/prep.json', "
        f"'runContext': '{a.runs}' & {run} & '/run.json', "
        f"'runKey': '{a.runs}' & {run} & '/', "
        f"'runFiles': 's3://{artifacts}/{a.runs}' & {run} & '/', "
        f"'raw': 's3://{data}/', "
        f"'prepared': 's3://{data}/{d.prepared}' & {run} & '/', "
        f"'manifestKey': '{d.prepared}' & {run} & '/manifest.json', "
        f"'import': 's3://{data}/{d.personalize_import}' & {run} & '/', "
        f"'batchInput': 's3://{artifacts}/{a.personalize_batch_input}' & {run} & '/', "
        f"'batchOutput': 's3://{artifacts}/{a.personalize_batch_output}' & {run} & '/', "
        f"'fmModels': 's3://{artifacts}/{a.models}' & {run} & '/fm/', "
        f"'knnInput': 's3://{artifacts}/{a.models}' & {run} & '/knn-input/', "
        f"'knnModels': 's3://{artifacts}/{a.models}' & {run} & '/knn/', "
        f"'transform': 's3://{artifacts}/{a.predictions}' & {run} & '/fm-knn/transform/', "
        f"'recommendations': 's3://{artifacts}/{a.predictions}' & {run} & '/fm-knn/', "
        f"'fmTrainingKey': '{a.runs}' & {run} & '/fm-training.json', "
        f"'report': 's3://{artifacts}/{a.reports}' & {run} & '/', "
        f"'reportKey': '{a.reports}' & {run} & '/metrics.json'"
        "}"
    )


def finished_notice(self: RunWorkflow, *, subject: str, message: str, detail: str) -> sfn.Chain:
    """The run's end told to subscribers (SNS) and automation (EventBridge), each guarded."""
    publish, event = notify(
        self, "Finished", topic=self.uses.topic, subject=subject, message=message, detail=detail
    )
    self.guard.protect(publish, "Finished: notify")
    self.guard.protect(event, "Finished: event")
    return sfn.Chain.start(publish).next(event)


def put_run_file(self: RunWorkflow, name: str, key: str, body: str) -> tasks.CallAwsService:
    """A JSON file the run writes under runs/<run>/ (key and body: JSONata)."""
    write = tasks.CallAwsService.jsonata(
        self,
        name,
        service="s3",
        action="putObject",
        parameters={
            "Bucket": self.uses.artifacts.bucket_name,
            "Key": jsonata(key),
            "Body": jsonata(body),
            "ContentType": "application/json",
        },
        iam_resources=[self.uses.artifacts.arn_for_objects(f"{layout.ARTIFACTS.runs}*")],
        outputs=jsonata("{}"),
    )
    self.guard.protect(write, name)
    return write


def read_json(
    self: RunWorkflow, name: str, bucket, key: str, variable: str, prefix: str
) -> tasks.CallAwsService:
    """An S3 JSON file into `$variable`: the one way values known only at run time (prep's
    manifest, the leaderboard) reach later requests."""
    read = tasks.CallAwsService.jsonata(
        self,
        name,
        service="s3",
        action="getObject",
        parameters={"Bucket": bucket.bucket_name, "Key": jsonata(key)},
        iam_resources=[bucket.arn_for_objects(f"{prefix}*")],
        assign={variable: jsonata("$parse($states.result.Body)")},
        outputs=jsonata("{}"),
    )
    self.guard.protect(read, name)
    return read


def prep_options_state(self: RunWorkflow) -> tasks.CallAwsService:
    return put_run_file(
        self, "Write the prep options", "$paths.prepOptions", "$string($run.contracts.prep)"
    )


def prep_state(self: RunWorkflow) -> sfn.IChainable:
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
        "{$exists($lookup($run.contracts.data, $k))}), function($kind) {" + render(metadata) + "}))"
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
    return self.job(
        "Prepare the data",
        "prep",
        module="prep",
        arguments=arguments,
        inputs=jsonata(inputs),
        outputs=outputs,
    )


KNN_INPUT = f"{IN}/fm-knn"
RECOMMENDATIONS = f"{OUT}/recommendations"


def evaluate_states(self: RunWorkflow, *, context: str, sources: str, fm_knn: str) -> sfn.Chain:
    """Run context → evaluation job → `$report`. `context`: the run.json body (JSONata);
    `sources`: the Personalize batch outputs to score (a JSONata array of {key}); `fm_knn`: a
    JSONata condition, true when the FM → KNN transform output is there to score."""
    write = put_run_file(self, "Write the run context", "$paths.runContext", context)
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
    knn = jobs.s3_input("fm-knn", Expr("$paths.transform"), KNN_INPUT)
    inputs = (
        f"$append($append({render(fixed)}, $map({sources}, function($b) {{{render(batch)}}})), "
        f"{fm_knn} ? [{render(knn)}] : [])"
    )
    arguments = (
        f"$append($append(['--prepared', '{IN}/prepared', '--interactions', "
        f"'{IN}/interactions/interactions.csv', '--run-context', '{IN}/run/run.json', "
        f"'--output', '{OUT}/report'], $append($run.contracts.evaluation.args, "
        f"$reduce({sources}, function($all, $b) {{$append($all, ['--personalize-output', "
        f"'{IN}/personalize/' & $b.key])}}, []))), {fm_knn} ? ['--knn-output', '{KNN_INPUT}', "
        f"'--recommendations-output', '{RECOMMENDATIONS}'] : [])"
    )
    report = jobs.s3_output("report", Expr("$paths.report"), f"{OUT}/report")
    recommendations = jobs.s3_output(
        "recommendations", Expr("$paths.recommendations"), RECOMMENDATIONS
    )
    outputs = f"$append([{render(report)}], {fm_knn} ? [{render(recommendations)}] : [])"
    evaluate = self.job(
        "Evaluate",
        "evaluate",
        module="evaluate",
        arguments=jsonata(arguments),
        inputs=jsonata(inputs),
        outputs=jsonata(outputs),
    )
    read = read_json(
        self,
        "Read the leaderboard",
        self.uses.artifacts,
        "$paths.reportKey",
        "report",
        layout.ARTIFACTS.reports,
    )
    return sfn.Chain.start(write).next(evaluate).next(read)
