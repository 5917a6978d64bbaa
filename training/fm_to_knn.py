"""Factorization Machines model -> KNN index and queries: `python -m training.fm_to_knn`.

An FM score is w0 + w_u + w_i + <V_u, V_i> (user and item one-hot). For one user, w0 + w_u is a
constant, so ranking items by [V_u, 1] . [V_i, w_i] ranks them exactly as FM does: an
inner-product KNN over item rows [V_i, w_i] answers "top-K items for this user".

With the days_since_first feature (column d, value t) the item part also holds
w_d t + t <V_i, V_d>; the item bias is folded for one chosen t (default 0: a fresh interaction).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import mxnet_ndarray, recordio

MAX_SHARD_RECORDS = 1_000_000
_NAMES = {
    "v": ("arg:v", "v", "arg:Linear_Plus_Bias_v", "Linear_Plus_Bias_v"),
    "w1": ("arg:w1_weight", "w1_weight", "arg:Linear_Plus_Bias_w1_weight"),
    "w0": ("arg:w0_weight", "w0_weight", "arg:Linear_Plus_Bias_w0_weight"),
}


@dataclass
class FMParams:
    v: np.ndarray  # (feature_dim, num_factors)
    w: np.ndarray  # (feature_dim,)
    bias: float

    @property
    def feature_dim(self) -> int:
        return self.v.shape[0]


def read_fm_model(artifact: bytes | Path, feature_dim: int | None = None) -> FMParams:
    """Parse SageMaker's FM model.tar.gz: model_algo-1 (a zip) -> params (NDArray list)."""
    data = artifact.read_bytes() if isinstance(artifact, Path) else artifact
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith("model_algo-1")), None)
        if member is None:
            raise ValueError(
                f"no model_algo-1 in the artifact; members: {[m.name for m in tar.getmembers()]}"
            )
        inner = tar.extractfile(member).read()
    with zipfile.ZipFile(io.BytesIO(inner)) as archive:
        names = archive.namelist()
        params_name = next((n for n in names if n.endswith("params")), None)
        if params_name is None:
            raise ValueError(f"model_algo-1 holds no params file; it holds {names}")
        arrays = mxnet_ndarray.load(archive.read(params_name))
        if feature_dim is None and "meta.json" in names:
            meta = json.loads(archive.read("meta.json"))
            feature_dim = meta.get("training_parameters", {}).get("feature_dim")
    return orient(arrays, None if feature_dim is None else int(feature_dim))


def orient(arrays: dict[str, np.ndarray], feature_dim: int | None = None) -> FMParams:
    """Find v, w1 and w0 under their known names and turn v to (feature_dim, factors)."""
    found = {}
    for role, candidates in _NAMES.items():
        name = next((n for n in candidates if n in arrays), None)
        if name is None:
            raise ValueError(
                f"FM params have no {role} (looked for {candidates}); got {sorted(arrays)}"
            )
        found[role] = np.asarray(arrays[name], dtype=np.float64)
    w = found["w1"].reshape(-1)
    feature_dim = feature_dim or len(w)
    if len(w) != feature_dim:
        raise ValueError(f"w1_weight has {len(w)} values, feature_dim is {feature_dim}")
    v = found["v"]
    if v.ndim != 2 or feature_dim not in v.shape:
        raise ValueError(f"v has shape {v.shape}, which has no axis of feature_dim {feature_dim}")
    if v.shape[0] != feature_dim:
        v = v.T
    return FMParams(v=v, w=w, bias=float(found["w0"].reshape(-1)[0]))


def fm_scores(params: FMParams, users: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    """The FM prediction (before any link function) for every (user, item) pair: reference."""
    v_user, v_item = params.v[users], params.v[n_users : n_users + n_items]
    return (
        params.bias
        + params.w[users][:, None]
        + params.w[n_users : n_users + n_items]
        + v_user @ v_item.T
    )


def knn_matrices(
    params: FMParams, n_users: int, n_items: int, *, days: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item rows [V_i, w_i], item labels, user queries [V_u, 1]), all float32."""
    expected = n_users + n_items
    if params.feature_dim not in (expected, expected + 1):
        raise ValueError(
            f"model feature_dim {params.feature_dim} does not fit {n_users} users + {n_items} items"
        )
    v_item = params.v[n_users:expected]
    w_item = params.w[n_users:expected].copy()
    if params.feature_dim == expected + 1 and days:
        w_item += days * (v_item @ params.v[expected])
    items = np.hstack([v_item, w_item[:, None]]).astype(np.float32)
    users = np.hstack([params.v[:n_users], np.ones((n_users, 1))]).astype(np.float32)
    if n_items >= 1 << 24:
        raise ValueError("KNN labels are float32: item indices above 2^24 would not be exact")
    return items, np.arange(n_items, dtype=np.float32), users


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.fm_to_knn", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--model", type=Path, default=Path("/opt/ml/processing/input/model/model.tar.gz")
    )
    parser.add_argument(
        "--prepared",
        type=Path,
        default=Path("/opt/ml/processing/input/prepared"),
        help="prep's output (its manifest.json gives the user and item counts)",
    )
    parser.add_argument("--output", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--days", type=float, default=0.0)
    parser.add_argument(
        "--user-shards",
        type=int,
        default=1,
        help="write the user queries in at least this many files: a batch transform spreads "
        "its input over its instances by file, so one file keeps every instance but one idle",
    )
    args = parser.parse_args(argv)
    manifest = json.loads((args.prepared / "manifest.json").read_text())
    params = read_fm_model(args.model, manifest["fm"]["feature_dim"])
    items, labels, users = knn_matrices(
        params, manifest["users"], manifest["items"], days=args.days
    )
    recordio.write_shards(args.output / "knn" / "train", "items", items, labels)
    per_shard = max(1, min(MAX_SHARD_RECORDS, -(-len(users) // max(1, args.user_shards))))
    recordio.write_shards(
        args.output / "knn" / "users", "users", users, records_per_shard=per_shard
    )
    summary = {"feature_dim": items.shape[1], "items": len(items), "users": len(users)}
    (args.output / "knn" / "manifest.json").write_text(json.dumps(summary, indent=2))
    print(f"fm_to_knn: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
