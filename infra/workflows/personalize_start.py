"""How a Personalize run starts: the plan (config, contracts, refusals before anything is billed),
the run's layout in S3 (`$paths`) and references (`$refs`), and the prep job."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from infra import layout
from infra.workflows import jobs
from infra.workflows.core import Expr, jsonata, render

if TYPE_CHECKING:
    from infra.workflows.personalize import PersonalizeWorkflow

IN, OUT = "/opt/ml/processing/input", "/opt/ml/processing/output"


def plan_states(self: PersonalizeWorkflow) -> sfn.IChainable:
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


def prep_state(self: PersonalizeWorkflow) -> sfn.IChainable:
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
