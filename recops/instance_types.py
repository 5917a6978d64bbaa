"""The instance types SageMaker offers for processing, training and transform jobs.

The table is data (`sagemaker_instance_types.json`), generated from botocore's SageMaker service
model (the `ProcessingInstanceType`, `TrainingInstanceType` and `TransformInstanceType` enums,
which are what the API accepts) with `python -m recops.instance_types`; a test checks it still
matches the installed botocore. The config model refuses any other type (`ml.banana.xlarge`)
at synth, and the exported JSON Schema carries the same lists, so a config checked without
botocore (the trigger Lambda) is checked against the same table.
"""

from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path

TABLE = Path(__file__).with_name("sagemaker_instance_types.json")
# job kind -> botocore shape name
SHAPES = {
    "processing": "ProcessingInstanceType",
    "training": "TrainingInstanceType",
    "transform": "TransformInstanceType",
}


@functools.cache
def table() -> dict:
    return json.loads(TABLE.read_text())


def offered(kind: str) -> tuple[str, ...]:
    """The instance types SageMaker offers for one kind of job."""
    return tuple(table()[kind])


def problem(kind: str, instance_type: str) -> str | None:
    """Why the type cannot run this kind of job, with the closest offered types; None if it can."""
    types = offered(kind)
    if instance_type in types:
        return None
    close = difflib.get_close_matches(instance_type, types, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else f"e.g. {', '.join(types[:3])}"
    return (
        f"{instance_type!r} is not an instance type SageMaker offers for {kind} jobs; {hint} "
        f"(the full list: recops/{TABLE.name}, from botocore's {SHAPES[kind]})"
    )


def generate() -> dict:
    """The table, read from the installed botocore's SageMaker model."""
    import botocore
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    types = {kind: list(model.shape_for(shape).enum) for kind, shape in SHAPES.items()}
    return {"source": f"botocore=={botocore.__version__} sagemaker service model", **types}


def main() -> None:
    TABLE.write_text(json.dumps(generate(), indent=1) + "\n")
    print(f"wrote {TABLE}")


if __name__ == "__main__":
    main()
