"""How a Personalize run ends: the run context, the evaluation job, the leaderboard read back, and
the notification (status, leaderboard, failed recipes, training cost from the price table)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_stepfunctions as sfn

from infra.workflows import run_states
from infra.workflows.core import LONG, Guard, bounded_poll, jsonata
from infra.workflows.run import execution_arns
from recops import prices

if TYPE_CHECKING:
    from infra.workflows.personalize import PersonalizeWorkflow


def evaluate_states(self: PersonalizeWorkflow) -> sfn.IChainable:
    trained = "$solutions[$not($exists(failed))]"
    context = (
        "$string({'run': $run.runId, "
        f"'batchJobs': [{trained}.batches.{{'batchJob': key, 'solution': solution, "
        "'recipe': recipe}], "
        "'notScored': [$run.contracts.evaluation.notScored], "
        "'failed': $append([$solutions[$exists(failed)].{'solution': solution, "
        "'error': failed.error, 'cause': $string(failed.cause)}], "
        f"$fmFailed != null ? [{FM_FAILED}] : []), "
        f"'solutionMetrics': $merge($append($append([{{}}], {trained}.{{solution: metrics}}), "
        f"$exists($fmOutput.fmTraining) ? [{FM_METRICS}] : []))}})"
    )
    return wait_for_fm_knn(self).next(
        run_states.evaluate_states(
            self,
            context=context,
            sources=f"[{trained}.batches]",
            fm_knn="$exists($fmOutput.transform)",
        )
    )


FM_FAILED = "{'solution': 'fm-knn', 'error': $fmFailed.error, 'cause': $string($fmFailed.cause)}"
FM_METRICS = "{'fm-knn': $fmOutput.fmTraining.metrics}"


def wait_for_fm_knn(self: PersonalizeWorkflow) -> sfn.Chain:
    """The child FM → KNN run, polled to its end. Its failure is one failed row of the
    leaderboard (`$fmFailed`), as a failed recipe is, not the end of the Personalize run."""
    begin = sfn.Pass.jsonata(
        self,
        "FM → KNN: wait",
        assign={"fmOutput": jsonata("null"), "fmFailed": jsonata("null")},
    )
    if self.fm_knn is None:
        return sfn.Chain.start(begin)
    failed = sfn.Pass.jsonata(self, "FM → KNN: failed", assign={"fmFailed": jsonata("$fm_failure")})
    guard = Guard(failed, prefix="fm_")
    poll = bounded_poll(
        self,
        "FM → KNN: poll",
        guard=guard,
        service="sfn",
        action="describeExecution",
        iam_action="states:DescribeExecution",
        parameters={"ExecutionArn": jsonata("$fmExecution")},
        iam_resources=[execution_arns(self.fm_knn)],
        status="$states.result.Status",
        reason="$states.result.Error & ': ' & $states.result.Cause",
        resource="'The FM → KNN run ' & $fmExecution",
        policy=LONG,
        done=("SUCCEEDED",),
        waiting=("RUNNING",),
    )
    done = sfn.Pass.jsonata(
        self, "FM → KNN: done", assign={"fmOutput": jsonata("$parse($states.input.Output)")}
    )
    poll.next(done)
    converge = sfn.Pass.jsonata(self, "FM → KNN: settled")
    done.next(converge)
    failed.next(converge)
    choice = sfn.Choice.jsonata(self, "FM → KNN running?")
    choice.when(
        sfn.Condition.jsonata(jsonata("$exists($fmExecution) and $fmExecution != null")), poll
    )
    choice.otherwise(converge)
    begin.next(choice)
    return sfn.Chain.custom(begin, [converge], converge)


def finish_states(self: PersonalizeWorkflow) -> sfn.IChainable:
    stack = self.config.prefix
    failed = (
        "$append([$solutions[$exists(failed)]], $fmFailed != null ? "
        "[{'solution': 'fm-knn', 'failed': $fmFailed}] : [])"
    )
    status = f"($count({failed}) > 0 ? 'PARTIAL' : 'COMPLETE')"
    leaders = run_states.LEADERBOARD_LINES
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
    told = run_states.finished_notice(
        self,
        subject=f"'recops {stack} run ' & $run.runId & ': ' & {status}",
        message=message,
        detail=detail,
    )
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
    return told.next(check)
