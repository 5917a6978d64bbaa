"""The demo configuration's FM settings (config/movielens-demo.json), applied to any .inter file.

The benchmarks use these so that what they time is what the demo deploys: the prep job's
options from the config model, and the FM hyperparameters the workflow passes to training.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from infra.config import load_config
from training import prep

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "movielens-demo.json"


def prep_options() -> prep.PrepOptions:
    """The demo's prep options (columns are the .inter header, so they fit every MovieLens)."""
    return prep.PrepOptions.from_dict(load_config(DEMO_CONFIG).prep_options())


def fm_hyperparameters(feature_dim: int) -> dict[str, str]:
    """SageMaker's FM hyperparameters (strings, as CreateTrainingJob takes them) for the demo."""
    fm = load_config(DEMO_CONFIG).factorization_machines
    predictor = "regressor" if fm.target == "regression" else "binary_classifier"
    return {
        "feature_dim": str(feature_dim),
        "num_factors": str(fm.num_factors),
        "predictor_type": predictor,
        "epochs": str(fm.epochs),
        "mini_batch_size": str(fm.mini_batch_size),
    }


def prepare(interactions: Path, output: Path) -> dict:
    """Run the prep job in this process at the demo's settings; its manifest."""
    with contextlib.redirect_stdout(io.StringIO()):
        return prep.run(interactions, output, prep_options())
