"""Where things live in the two buckets.

Policies are scoped to these prefixes, so a job or service can touch only its own part of a
bucket. Runtime code receives the same strings through its inputs, never by importing this.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataPrefixes:
    """The data bucket: what users upload and what preparation makes of it."""

    raw: str = "raw/"
    uploads: str = "train/"  # a config uploaded here starts a run (infra/triggers.py)
    prepared: str = "prepared/"
    personalize_import: str = "personalize/import/"


@dataclass(frozen=True)
class ArtifactPrefixes:
    """The artifacts bucket: code, models, predictions and reports."""

    code: str = "code/"
    models: str = "models/"
    predictions: str = "predictions/"
    reports: str = "reports/"
    runs: str = "runs/"  # what a run's state machine writes for its jobs: options, context
    personalize_batch_input: str = "personalize/batch-input/"
    personalize_batch_output: str = "personalize/batch-output/"


DATA = DataPrefixes()
ARTIFACTS = ArtifactPrefixes()
TMP = "tmp/"
# Objects under tmp/ in either bucket are scratch space and expire after this many days.
TMP_EXPIRY_DAYS = 7
