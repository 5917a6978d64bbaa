"""How a Personalize run ends: the run context, the evaluation job, the leaderboard read back, and
the notification (status, leaderboard, failed recipes, training cost from the price table)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from infra import layout
from infra.workflows import jobs
from infra.workflows.core import Expr, jsonata, render
from infra.workflows.outcome import notify
from recops import prices

if TYPE_CHECKING:
    from infra.workflows.personalize import PersonalizeWorkflow

IN, OUT = "/opt/ml/processing/input", "/opt/ml/processing/output"


def evaluate_states(self: PersonalizeWorkflow) -> sfn.IChainable:
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
    evaluate = self.job(
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


def finish_states(self: PersonalizeWorkflow) -> sfn.IChainable:
    stack = self.config.prefix
    failed = "$solutions[$exists(failed)]"
    status = f"($count({failed}) > 0 ? 'PARTIAL' : 'COMPLETE')"
    leaders = (
        "$join($map($report.leaderboard[[0..9]], function($r, $i) {$string($i + 1) & '. ' & "
        "$r.name & '  ' & $report.rankedBy & '=' & ($type($lookup($r.metrics, "
        "$report.rankedBy)) = 'number' ? $formatNumber($lookup($r.metrics, "
        "$report.rankedBy), '0.0000') : 'n/a') & ($r.beatsBaseline ? '' : '  (does not beat the "
        "baseline)')}), '\\n')"
    )
    failures = (
        f"$join({failed}.('- ' & solution & ': ' & failed.error & ': ' & "
        "$string(failed.cause)), '\\n')"
    )
    table = prices.load()
    hourly = table.prices["personalize.training_hour"].usd
    hours = (
        "$sum($solutions[$type(trainingHours) = 'number' and "
        "$not($contains(recipe, '-v2'))].trainingHours)"
    )
    cost = (
        f"'\\n\\nPersonalize training: ' & $formatNumber({hours}, '0.00') & ' training "
        f"hours x ${hourly}/h = $' & $formatNumber({hours} * {hourly}, '0.00') & ' (recipes "
        "billed by the hour; -v2 recipes bill per interaction and batch jobs per "
        f"recommendation: recops cost ' & $run.runId & ' has the whole run. List prices of "
        f"the price table in the README, read {table.read})'"
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
