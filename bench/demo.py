"""The demo configuration's FM settings (config/movielens-demo.json), applied to any .inter file.

The benchmarks use the contracts the workflow itself derives from the config (recops.contracts),
so that what they time is what the demo deploys: the prep job's options file and the FM
hyperparameters of the training job.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from recops import contracts
from recops.config import load_config
from training import prep

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "movielens-demo.json"


def prep_options() -> dict:
    """The demo's prep options file (its columns are the .inter header: every MovieLens fits)."""
    return contracts.prep_options(load_config(DEMO_CONFIG))


def write_prep_options(path: Path) -> Path:
    path.write_text(json.dumps(prep_options()))
    return path


def fm_hyperparameters(manifest: dict) -> dict[str, str]:
    """The FM training job's hyperparameters (strings, as CreateTrainingJob takes them)."""
    spec = contracts.fm_hyperparameters(load_config(DEMO_CONFIG))
    return contracts.resolve_hyperparameters(spec, manifest)


def prepare(interactions: Path, output: Path) -> dict:
    """Run the prep job in this process at the demo's settings; its manifest."""
    with contextlib.redirect_stdout(io.StringIO()):
        return prep.run(interactions, output, prep.PrepOptions.from_dict(prep_options()))
