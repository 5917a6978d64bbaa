"""One solution's iteration of the Solutions Map: solution → version (trained for this run) →
its metrics (to CloudWatch; into the run context for S3) → its batch inference jobs. A failure
anywhere ends only this iteration, with {solution, failed: {state, error, cause}}, so the other
recipes finish and the leaderboard is partial rather than lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from infra.workflows.core import RUN_SUFFIX, Guard, fail_with_failure, jsonata
from infra.workflows.personalize_steps import PersonalizeSteps

if TYPE_CHECKING:
    from infra.workflows.personalize import PersonalizeWorkflow

NAMESPACE = "recops"


def solution_iteration(workflow: PersonalizeWorkflow, steps: PersonalizeSteps) -> sfn.IChainable:
    failed = sfn.Pass.jsonata(
        workflow,
        "Solution: failed",
        outputs=jsonata("{'solution': $solutionKey, 'recipe': $recipe, 'failed': $sol_failure}"),
    )
    guard = Guard(failed, retry_on_not_ready=True, prefix="sol_")
    start = sfn.Pass.jsonata(
        workflow,
        "Solution: start",
        assign={
            "solutionKey": jsonata("$states.input.key"),
            "solutionEntry": jsonata("$states.input"),
            "recipe": jsonata("$split($states.input.create.recipeArn, '/')[-1]"),
            "version": jsonata("$plan.solutionVersions[key = $states.input.key]"),
            "batches": jsonata("[$plan.batchInferenceJobs[solution = $states.input.key]]"),
        },
    )
    solution = steps.ensure(
        "Solution",
        "solution",
        {"entry": jsonata("$solutionEntry"), "refs": jsonata("$refs")},
        guard,
    )
    keep_solution = sfn.Pass.jsonata(
        workflow, "Solution: remember", assign={"solutionArn": jsonata("$sol_arn")}
    )
    version_refs = (
        "$merge([$refs, {'arn:solution:' & $solutionKey: $solutionArn, "
        f"'run:name': $version.stem & {RUN_SUFFIX}}}])"
    )
    version = steps.ensure(
        "Solution version",
        "solutionVersion",
        {"entry": jsonata("$version"), "refs": jsonata(version_refs)},
        guard,
    )
    keep_version = sfn.Pass.jsonata(
        workflow,
        "Solution version: remember",
        assign={
            "versionArn": jsonata("$sol_arn"),
            "trainingHours": jsonata("$states.input.SolutionVersion.TrainingHours"),
        },
    )
    metrics = tasks.LambdaInvoke.jsonata(
        workflow,
        "Solution metrics",
        lambda_function=steps.function,
        payload=sfn.TaskInput.from_object(
            {"step": "solutionMetrics", "solutionVersionArn": jsonata("$versionArn")}
        ),
        assign={"metrics": jsonata("$states.result.Payload.metrics")},
        retry_on_service_exceptions=False,
    )
    guard.protect(metrics, "Solution metrics")
    publish = sfn.CustomState(
        workflow,
        "Solution metrics: CloudWatch",
        state_json={
            "Type": "Task",
            "Resource": f"arn:{Aws.PARTITION}:states:::aws-sdk:cloudwatch:putMetricData",
            "Arguments": {
                "Namespace": NAMESPACE,
                "MetricData": jsonata(
                    "$each($metrics, function($value, $name) {{'MetricName': $name, 'Value': "
                    "$value, 'Dimensions': [{'Name': 'Stack', 'Value': $plan.stack}, "
                    "{'Name': 'Solution', 'Value': $solutionKey}]}})"
                ),
            },
            "Output": jsonata("$states.input"),
        },
    )
    # PutMetricData has no resource type, so "*" is what the API demands; the namespace
    # condition keeps the grant to recops' own metrics.
    workflow.role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": NAMESPACE}},
        )
    )
    guard.protect(publish, "Solution metrics: CloudWatch")
    batches = _batches(workflow, steps)
    done = sfn.Pass.jsonata(
        workflow,
        "Solution: done",
        outputs=jsonata(
            "{'solution': $solutionKey, 'recipe': $recipe, 'solutionArn': $solutionArn, "
            "'versionArn': $versionArn, 'trainingHours': $trainingHours, 'metrics': $metrics, "
            "'batches': [$states.input]}"
        ),
    )
    any_metrics = sfn.Choice.jsonata(workflow, "Solution metrics: any?")
    any_metrics.when(
        sfn.Condition.jsonata(jsonata("$exists($metrics) and $count($keys($metrics)) > 0")),
        publish.next(batches),
    )
    any_metrics.otherwise(batches)
    batches.next(done)
    return (
        sfn.Chain.start(start)
        .next(solution)
        .next(keep_solution)
        .next(version)
        .next(keep_version)
        .next(metrics)
        .next(any_metrics)
    )


def _batches(workflow: PersonalizeWorkflow, steps: PersonalizeSteps) -> sfn.IChainable:
    each = sfn.Map.jsonata(
        workflow,
        "Batch inference",
        items=sfn.ProvideItems.jsonata(jsonata("$batches")),
        max_concurrency=2,
    )
    failed = fail_with_failure(workflow, "Batch inference: failed", "job_failure")
    guard = Guard(failed, retry_on_not_ready=True, prefix="job_")
    refs = (
        "$merge([$refs, {'arn:solutionVersion:' & $solutionKey: $versionArn, "
        f"'run:name': $states.input.stem & {RUN_SUFFIX}}}])"
    )
    job = steps.ensure(
        "Batch job",
        "batchInferenceJob",
        {"entry": jsonata("$states.input"), "refs": jsonata(refs)},
        guard,
        first={"job_key": jsonata("$states.input.key")},
    )
    done = sfn.Pass.jsonata(
        workflow,
        "Batch job: done",
        outputs=jsonata(
            "{'key': $job_key, 'solution': $solutionKey, 'recipe': $recipe, 'arn': $job_arn}"
        ),
    )
    each.item_processor(job.next(done))
    each.add_catch(
        sfn.Pass.jsonata(
            workflow,
            "Batch inference: record",
            outputs=jsonata(
                "{'solution': $solutionKey, 'recipe': $recipe, 'failed': $sol_failure}"
            ),
        ),
        errors=["States.ALL"],
        assign={
            "sol_failure": jsonata(
                "{'state': 'Batch inference', 'error': $states.errorOutput.Error, "
                "'cause': $states.errorOutput.Cause}"
            )
        },
    )
    return each
