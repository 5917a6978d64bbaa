"""The SageMaker FM → KNN state machine: prep (unless a Personalize run prepared the data) →
prep's manifest read back → Factorization Machines training (its test metrics written under the
run) → `training.fm_to_knn` extracts item vectors and user queries → KNN training over the items
→ a model and one batch transform scoring every user (no endpoint) → evaluation against
popularity, the top-K per user with original ids published, and a notification.

Started by the Personalize machine (input `{"parentRun": <its $run>}`) it shares that run's id
and prepared data, skips plan, prep and evaluation, and returns what the parent's evaluation
needs: `{"run", "transform", "fmTraining"}`. Started alone it plans, prepares and evaluates
itself. Variables: `$run`, `$paths` (as the Personalize machine), `$manifest` (prep's
manifest.json), `$fm` (the FM training job's outcome).
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import layout
from infra.workflows import run_states
from infra.workflows.algorithms import SAGEMAKER, Jobs, channel, hyperparameters
from infra.workflows.core import RUN_SUFFIX, jsonata
from infra.workflows.run import Resources, RunWorkflow
from infra.workflows.run_states import IN, OUT
from recops import names
from recops.config import PipelineConfig

VERBOSE_JSONLINES = "application/jsonlines; verbose=true"
FM_TRAINING = (
    "{'job': $states.result.TrainingJobName, 'model': "
    "$states.result.ModelArtifacts.S3ModelArtifacts, 'metrics': "
    "$merge($append([{}], $states.result.FinalMetricDataList.{MetricName: Value})), "
    "'billableSeconds': $states.result.BillableTimeInSeconds}"
)


def job_name(label: str) -> str:
    return f"{SAGEMAKER}.jobs.`{label}` & {RUN_SUFFIX}"


class FmKnnWorkflow(RunWorkflow):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: PipelineConfig, uses: Resources
    ) -> None:
        # a child run shares its parent's run id: its failure record must not overwrite the
        # parent's
        super().__init__(
            scope, construct_id, config=config, uses=uses, failure_record="fm-knn-failure.json"
        )
        self.jobs = Jobs(
            self,
            guard=self.guard,
            machine_role=self.role,
            job_role=uses.sagemaker_role,
            job_name_prefix=names.owned_prefix(config.prefix),
        )
        definition = (
            self._start()
            .next(self._train_fm())
            .next(self._extract())
            .next(self._train_knn())
            .next(self._score_users())
            .next(self._finish())
        )
        self.build_machine(definition, kind="fm-knn", what="the SageMaker FM → KNN workflow")
        self.acknowledge(
            {},
            sagemaker=("processing-job", "training-job", "transform-job", "model"),
        )

    # --- the run's start: the parent's, or its own plan and prep -------------------------------

    def _start(self) -> sfn.Chain:
        join = sfn.Pass.jsonata(
            self, "Join the parent run", assign={"run": jsonata("$states.input.parentRun")}
        )
        alone = run_states.plan_state(self)
        child = sfn.Choice.jsonata(self, "Started by a Personalize run?")
        child.when(
            sfn.Condition.jsonata(jsonata("$exists($states.input.parentRun)")), join
        ).otherwise(alone)
        lay_out = sfn.Pass.jsonata(
            self, "Lay out the run", assign={"paths": jsonata(run_states.run_paths(self))}
        )
        join.next(lay_out)
        alone.next(lay_out)
        manifest = run_states.read_json(
            self,
            "Read the prep manifest",
            self.uses.data,
            "$paths.manifestKey",
            "manifest",
            layout.DATA.prepared,
        )
        prep = (
            sfn.Chain.start(run_states.prep_options_state(self))
            .next(run_states.prep_state(self))
            .next(manifest)
        )
        prepared = sfn.Choice.jsonata(self, "Data prepared by the parent?")
        prepared.when(
            sfn.Condition.jsonata(jsonata("$exists($states.context.Execution.Input.parentRun)")),
            manifest,
        ).otherwise(prep)
        lay_out.next(prepared)
        return sfn.Chain.custom(child, [manifest], manifest)

    # --- training and scoring ------------------------------------------------------------------

    def _train_fm(self) -> sfn.IChainable:
        train = self.jobs.training(
            "Train FM",
            job_name=job_name("fm"),
            image=self.uses.images.uri("fm"),
            hyperparameters=hyperparameters(f"{SAGEMAKER}.fm", "$manifest"),
            channels=[
                channel("train", "$paths.prepared & 'fm/train/'", sharded=True),
                channel("test", "$paths.prepared & 'fm/test/'"),
            ],
            output="$paths.fmModels",
            instance_type=f"{SAGEMAKER}.instanceTypes.fm",
            instance_count=f"{SAGEMAKER}.fmInstanceCount",
            assign={"fm": jsonata(FM_TRAINING)},
        )
        record = run_states.put_run_file(
            self, "Write the FM training metrics", "$paths.fmTrainingKey", "$string($fm)"
        )
        return sfn.Chain.start(train).next(record)

    def _extract(self) -> sfn.IChainable:
        """fm_to_knn on the model: item rows [V_i, w_i] (the index) and user queries [V_u, 1]."""
        from infra.workflows import jobs

        inputs = [
            jobs.s3_input("model", jsonata("$fm.model"), f"{IN}/model"),
            jobs.s3_input(
                "manifest", jsonata("$paths.prepared & 'manifest.json'"), f"{IN}/prepared"
            ),
        ]
        arguments = jsonata(
            f"['--model', '{IN}/model/model.tar.gz', '--prepared', '{IN}/prepared', "
            f"'--output', '{OUT}', '--user-shards', $string({SAGEMAKER}.transformInstanceCount)]"
        )
        return self.job(
            "Extract the KNN index",
            "fm-to-knn",
            module="fm_to_knn",
            arguments=arguments,
            inputs=inputs,
            outputs=[jobs.s3_output("knn", jsonata("$paths.knnInput"), f"{OUT}/knn")],
        )

    def _train_knn(self) -> sfn.IChainable:
        return self.jobs.training(
            "Train KNN",
            job_name=job_name("knn"),
            image=self.uses.images.uri("knn"),
            hyperparameters=hyperparameters(f"{SAGEMAKER}.knn", "$manifest"),
            channels=[channel("train", "$paths.knnInput & 'train/'")],
            output="$paths.knnModels",
            instance_type=f"{SAGEMAKER}.instanceTypes.knn",
            assign={"knnModel": jsonata("$states.result.ModelArtifacts.S3ModelArtifacts")},
        )

    def _score_users(self) -> sfn.IChainable:
        model = self.jobs.model(
            "Create the KNN model",
            model_name=job_name("knn-model"),
            image=self.uses.images.uri("knn"),
            model_data="$knnModel",
            assign={"knnModelName": jsonata(job_name("knn-model"))},
        )
        transform = self.jobs.transform(
            "Batch transform",
            job_name=job_name("knn-transform"),
            model_name="$knnModelName",
            source="$paths.knnInput & 'users/'",
            output="$paths.transform",
            accept=VERBOSE_JSONLINES,
            instance_type=f"{SAGEMAKER}.instanceTypes.knnTransform",
            instance_count=f"{SAGEMAKER}.transformInstanceCount",
        )
        return sfn.Chain.start(model).next(transform)

    # --- the end: back to the parent, or evaluated and notified ---------------------------------

    def _finish(self) -> sfn.IChainable:
        to_parent = sfn.Succeed.jsonata(
            self,
            "Back to the Personalize run",
            outputs=jsonata(
                "{'run': $run.runId, 'transform': $paths.transform, 'fmTraining': $fm}"
            ),
        )
        context = (
            "$string({'run': $run.runId, 'batchJobs': [], 'notScored': [], 'failed': [], "
            "'solutionMetrics': {'fm-knn': $fm.metrics}})"
        )
        evaluate = run_states.evaluate_states(self, context=context, sources="[]", fm_knn="true")
        choice = sfn.Choice.jsonata(self, "Evaluated by the parent?")
        choice.when(
            sfn.Condition.jsonata(jsonata("$exists($states.context.Execution.Input.parentRun)")),
            to_parent,
        ).otherwise(evaluate)
        evaluate.next(self._notify())
        return choice

    def _notify(self) -> sfn.IChainable:
        stack = self.config.prefix
        leaders = run_states.LEADERBOARD_LINES
        message = (
            f"'recops {stack}: FM → KNN run ' & $run.runId & ' ' & $report.status & "
            "'.\\n\\nLeaderboard (' & "
            f"$report.rankedBy & '):\\n' & {leaders} & '\\n\\nFM training job ' & $fm.job & "
            "': ' & $string($fm.metrics) & '\\nTop-K per user: ' & $paths.recommendations & "
            "'recommendations.jsonl (and .csv)\\nReport: ' & $paths.report & 'report.html"
            "\\nExecution: ' & $states.context.Execution.Id"
        )
        detail = (
            f"{{'stack': '{stack}', 'run': $run.runId, 'workflow': 'fm-knn', 'status': "
            "$report.status, 'report': $paths.report, 'recommendations': $paths.recommendations, "
            "'execution': $states.context.Execution.Id}"
        )
        told = run_states.finished_notice(
            self,
            subject=f"'recops {stack} FM → KNN run ' & $run.runId & ': ' & $report.status",
            message=message,
            detail=detail,
        )
        done = sfn.Succeed.jsonata(
            self,
            "Run complete",
            outputs=jsonata(
                "{'run': $run.runId, 'status': 'COMPLETE', 'report': $paths.report, "
                "'recommendations': $paths.recommendations, "
                "'leader': $report.leaderboard[0].name}"
            ),
        )
        partial = sfn.Fail.jsonata(
            self,
            "FM → KNN not scored",
            error="RecipesFailed",
            cause=jsonata("$join($report.failed.(solution & ': ' & cause), '; ')"),
        )
        check = sfn.Choice.jsonata(self, "Scored?")
        check.when(sfn.Condition.jsonata(jsonata("$report.status = 'COMPLETE'")), done)
        check.otherwise(partial)
        return told.next(check)
