"""Build FM model.tar.gz files in SageMaker's layout, for tests."""

import io
import json
import tarfile
import zipfile

import numpy as np

from training import mxnet_ndarray


def fm_artifact(v, w, w0, *, names=("arg:v", "arg:w1_weight", "arg:w0_weight"), meta=True) -> bytes:
    params = mxnet_ndarray.dump(
        {
            names[0]: np.asarray(v, np.float32),
            names[1]: np.asarray(w, np.float32).reshape(-1, 1),
            names[2]: np.asarray([w0], np.float32),
        }
    )
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("symbol.json", "{}")
        archive.writestr("params", params)
        if meta:
            archive.writestr(
                "meta.json", json.dumps({"training_parameters": {"feature_dim": len(w)}})
            )
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w:gz") as tar:
        info = tarfile.TarInfo("model_algo-1")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    return outer.getvalue()
