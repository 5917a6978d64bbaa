"""The container images localaws can run a processing job in: a pinned local Python per tag.

Gap closed (moto 5.2.5): moto runs no container. localaws stands in for an image with a second
virtual environment holding the image's Python and library versions (built by `make image-env`
from `localaws/images/<image>.txt`), so code that needs the development venv's newer libraries
fails here as it would in the image, plus the environment variables the image's Dockerfile sets.

scikit-learn 1.4-2 (aws/sagemaker-scikit-learn-container, docker/1.4-2/base and final
Dockerfile.cpu): Python 3.10, numpy 2.1.0, pyarrow 17.0.0, pandas/scipy resolved by conda;
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONIOENCODING=UTF-8 LANG=C.UTF-8
LC_ALL=C.UTF-8, SAGEMAKER_SKLEARN_VERSION, SAGEMAKER_TRAINING_MODULE/SERVING_MODULE, SM_INPUT…,
TEMP; no WORKDIR (the working directory is /); python3 on the PATH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from localaws.sagemaker_lifecycle import JobError

ROOT = Path(__file__).resolve().parents[1]  # the repository: environments are built beside it
_PYTHON = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")


@dataclass(frozen=True)
class Image:
    """One image tag's stand-in: a virtual environment and what the image's Dockerfile sets."""

    tag: str  # repository:tag
    folder: str  # the environment, relative to the repository
    pinned: str  # the requirements file it is built from
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"

    @property
    def prefix(self) -> Path:
        return ROOT / self.folder

    @property
    def python(self) -> Path:
        return self.prefix / "bin" / "python3"

    def interpreter(self, executable: str) -> str:
        """python, python3, /usr/bin/python3.10, /miniconda3/bin/python… are the image's."""
        return str(self.python) if _PYTHON.match(executable) else executable


_SKLEARN_ENV = {
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONIOENCODING": "UTF-8",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PIP_ROOT_USER_ACTION": "ignore",
    "SAGEMAKER_SKLEARN_VERSION": "1.4-2",
    "SAGEMAKER_TRAINING_MODULE": "sagemaker_sklearn_container.training:main",
    "SAGEMAKER_SERVING_MODULE": "sagemaker_sklearn_container.serving:main",
    "SM_INPUT": "/opt/ml/input",
    "SM_INPUT_TRAINING_CONFIG_FILE": "/opt/ml/input/config/hyperparameters.json",
    "SM_INPUT_DATA_CONFIG_FILE": "/opt/ml/input/config/inputdataconfig.json",
    "SM_CHECKPOINT_CONFIG_FILE": "/opt/ml/input/config/checkpointconfig.json",
    "SM_MODEL_DIR": "/opt/ml/model",
    "TEMP": "/home/model-server/tmp",
    "HOME": "/root",
}

IMAGES = {
    image.tag: image
    for image in (
        Image(
            "sagemaker-scikit-learn:1.4-2-cpu-py3",
            ".venv-sklearn-1.4-2",
            "localaws/images/sklearn-1.4-2.txt",
            _SKLEARN_ENV,
        ),
    )
}


def tag_of(image_uri: str) -> str:
    """`<registry>/<repository>:<tag>` -> `repository:tag`."""
    return image_uri.rsplit("/", 1)[-1]


def image_for(image_uri: str) -> Image:
    """The local stand-in for an image URI, or a JobError naming the tags there are."""
    image = IMAGES.get(tag_of(image_uri))
    if image is None:
        raise JobError(
            f"ClientError: localaws runs processing jobs in {sorted(IMAGES)} only, "
            f"not {tag_of(image_uri)!r}"
        )
    if not image.python.exists():
        raise JobError(
            f"ClientError: localaws has no environment for {image.tag} at {image.prefix}: "
            f"run `make image-env` (builds it from {image.pinned})"
        )
    return image
