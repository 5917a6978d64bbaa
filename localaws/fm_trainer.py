"""A local stand-in for SageMaker's Factorization Machines algorithm (numpy, its training loop
compiled with numba).

Same inputs (RecordIO-protobuf Float32 rows of width feature_dim, labels), same hyperparameter
names, same artifact layout (model.tar.gz -> model_algo-1, a zip with symbol.json, params in
MXNet's NDArray-list format, meta.json), so training/fm_to_knn reads what it writes exactly as
it reads SageMaker's. The optimiser is lazy Adam (MXNet's, for sparse gradients) on shuffled
mini-batches; the numbers are its own, not SageMaker's.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numba
import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from training import mxnet_ndarray, recordio
from training.fm_to_knn import FMParams


@dataclass
class FMHyperparameters:
    feature_dim: int
    num_factors: int
    predictor_type: str
    epochs: int = 1
    mini_batch_size: int = 1000
    bias_lr: float = 0.01
    linear_lr: float = 0.01
    factors_lr: float = 0.01
    bias_wd: float = 0.0
    linear_wd: float = 1e-4
    factors_wd: float = 1e-4
    factors_init_sigma: float = 0.01
    seed: int = 0

    @classmethod
    def from_strings(cls, raw: dict[str, str]) -> FMHyperparameters:
        """SageMaker passes hyperparameters as strings; unknown ones are ignored as the service does."""
        missing = [n for n in ("feature_dim", "num_factors", "predictor_type") if n not in raw]
        if missing:
            raise ValueError(f"ClientError: missing required hyperparameters {missing}")
        values = {}
        for spec in fields(cls):
            if spec.name in raw:
                kind = {"int": int, "float": float, "str": str}[spec.type]
                values[spec.name] = kind(raw[spec.name])
        hp = cls(**values)
        if hp.predictor_type not in ("regressor", "binary_classifier"):
            raise ValueError(
                f"ClientError: predictor_type {hp.predictor_type!r}; allowed: regressor, binary_classifier"
            )
        return hp


PREDICT_CHUNK_ROWS = 65_536  # bounds the (rows x num_factors) temporaries of predict


def predict(params: FMParams, features: sp.csr_matrix) -> np.ndarray:
    """The raw FM score: w0 + <w, x> + sum over pairs <v_i, v_j> x_i x_j (float64)."""
    features = sp.csr_matrix(features)
    v = np.asarray(params.v, np.float32)
    squared_norms = np.einsum("ij,ij->i", v, v)
    scores = np.empty(features.shape[0])
    for start in range(0, features.shape[0], PREDICT_CHUNK_ROWS):
        rows = features[start : start + PREDICT_CHUNK_ROWS]
        xv = rows @ v
        pairwise = 0.5 * (np.einsum("ij,ij->i", xv, xv) - rows.multiply(rows) @ squared_norms)
        scores[start : start + len(xv)] = params.bias + rows @ params.w + pairwise
    return scores


# The training loop is compiled (numba): a mini-batch of 1,000 one-hot records touches ~1,700
# rows of [V | w], and lazy Adam over them in numpy is ~17 passes over (rows x 65) temporaries
# (gathers, scatters, one ufunc per term), ~0.6 ms a batch here; fused per row it is a fifth of
# that, and the forward and backward passes need no temporaries at all.
# reassoc lets the dot products and norms vectorise (sums in another order, no approximations).
_JIT = {
    "cache": True,
    "nogil": True,
    "error_model": "numpy",
    "boundscheck": False,
    "fastmath": {"reassoc", "nsz", "contract"},
}
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8  # Adam's, as MXNet's defaults


@numba.njit(**_JIT)
def _adam(value, mean, variance, grad, step):  # numba types: float32 or float64
    """One Adam update of one number, in its own precision: the new value, mean and
    (uncentred) variance. `step` is the learning rate times the bias correction
    sqrt(1 - beta2^t) / (1 - beta1^t)."""
    kind = type(value)
    beta1, beta2 = kind(BETA1), kind(BETA2)
    mean = beta1 * mean + (kind(1) - beta1) * grad
    variance = beta2 * variance + (kind(1) - beta2) * grad * grad
    return value - step * mean / (np.sqrt(variance) + kind(EPSILON)), mean, variance


@numba.njit(**_JIT)
def _bias_correction(t: int) -> float:
    return np.sqrt(1 - BETA2**t) / (1 - BETA1**t)


@numba.njit(**_JIT)
def _gather(indptr, indices, data, order, first, last, ptr, idx, val) -> None:
    """Copy records order[first:last] into the batch's own CSR arrays (ptr, idx, val): the
    records are spread over the whole dataset, and reading them once, in a loop whose reads
    do not wait on each other, is cheaper than every later pass missing the cache."""
    ptr[0] = 0
    n = 0
    for i in range(last - first):
        row = order[first + i]
        for p in range(indptr[row], indptr[row + 1]):
            idx[n], val[n] = indices[p], data[p]
            n += 1
        ptr[i + 1] = n


@numba.njit(**_JIT)
def _touch(ptr, idx, rows, local, columns) -> int:
    """Number the distinct features of the batch: local[j] is feature j's row among the
    batch's touched rows, columns[u] the feature of touched row u (in the order first met);
    local stays -1 elsewhere. Returns the number of touched rows."""
    touched = 0
    for p in range(ptr[rows]):
        j = idx[p]
        if local[j] < 0:
            local[j] = touched
            columns[touched] = j
            touched += 1
    return touched


@numba.njit(**_JIT)
def _forward(ptr, idx, val, rows, weights, bias, xw, score) -> None:
    """For each record of the batch: xw[i] = [x V | x.w] and its FM score,
    bias + x.w + 0.5 (|x V|^2 - sum_j x_j^2 |v_j|^2) (float64)."""
    factors = weights.shape[1] - 1
    for i in range(rows):
        acc = xw[i]
        acc[:] = 0.0
        self_term = 0.0
        for p in range(ptr[i], ptr[i + 1]):
            x, v = val[p], weights[idx[p]]
            norm = 0.0
            for c in range(factors + 1):
                acc[c] += x * v[c]
            for c in range(factors):
                norm += v[c] * v[c]
            self_term += x * x * norm
        pairs = 0.0
        for c in range(factors):
            pairs += acc[c] * acc[c]
        score[i] = bias + acc[factors] + 0.5 * (pairs - self_term)


@numba.njit(**_JIT)
def _row_gradients(ptr, idx, val, rows, weights, local, touched, error, xw, grad) -> None:
    """grad[u]: the gradient of the batch's summed error terms (error[i] = d loss / d score_i)
    with respect to row columns[u] of [V | w], before decay:
    sum_i e_i x_ij [x_i V - x_ij v_j | 1]. Overwrites xw[:, -1]."""
    factors = weights.shape[1] - 1
    grad[:touched] = 0.0
    for i in range(rows):
        e, acc = error[i], xw[i]
        acc[factors] = 1.0
        for p in range(ptr[i], ptr[i + 1]):
            j = idx[p]
            g, v = grad[local[j]], weights[j]
            ex = np.float32(e * val[p])
            exx = np.float32(ex * val[p])
            for c in range(factors + 1):
                g[c] += ex * acc[c]
            for c in range(factors):
                g[c] -= exx * v[c]


@numba.njit(**_JIT)
def _adam_rows(weights, mean, variance, columns, touched, grad, decay, lr, t) -> None:
    """Lazy Adam, as MXNet's for sparse gradients: only the touched rows move (with their
    moments); untouched rows keep theirs. decay and lr per column of [V | w] (factors, linear)."""
    correction = np.float32(_bias_correction(t))
    for u in range(touched):
        j = columns[u]
        w, m, s, g = weights[j], mean[j], variance[j], grad[u]
        for c in range(w.shape[0]):
            w[c], m[c], s[c] = _adam(w[c], m[c], s[c], g[c] + decay[c] * w[c], lr[c] * correction)


@numba.njit(**_JIT)
def _epoch(indptr, indices, data, order, targets, size, binary, model, scratch, t, scores) -> int:
    """One pass over the records in `order` in mini-batches of `size`; scores[i] is record
    order[i]'s score before its batch's update. Returns Adam's step count after it."""
    weights, mean, variance, bias, decay, lr, bias_decay_lr = model
    ptr, idx, val, local, columns, xw, grad, error = scratch
    for first in range(0, len(order), size):
        last = min(first + size, len(order))
        rows = last - first
        _gather(indptr, indices, data, order, first, last, ptr, idx, val)
        touched = _touch(ptr, idx, rows, local, columns)
        score = scores[first:last]
        _forward(ptr, idx, val, rows, weights, bias[0], xw, score)
        for i in range(rows):
            p = 1.0 / (1.0 + np.exp(-score[i])) if binary else score[i]
            error[i] = (p - targets[first + i]) / rows  # gradients of the batch mean
        _row_gradients(ptr, idx, val, rows, weights, local, touched, error, xw, grad)
        t += 1
        bias_grad = error[:rows].sum() + bias_decay_lr[0] * bias[0]
        bias[0], bias[1], bias[2] = _adam(
            bias[0], bias[1], bias[2], bias_grad, bias_decay_lr[1] * _bias_correction(t)
        )
        _adam_rows(weights, mean, variance, columns, touched, grad, decay, lr, t)
        for u in range(touched):
            local[columns[u]] = -1
    return t


@dataclass
class _Model:
    """The weights being trained: [v | w] as one (feature_dim, num_factors + 1) float32 matrix,
    so that a record's row is read and updated in one pass; Adam's moments beside it; the bias
    apart, as [value, mean, variance] (float64)."""

    weights: np.ndarray  # [:, :factors] = v, [:, factors] = w
    mean: np.ndarray
    variance: np.ndarray
    bias: np.ndarray
    decay: np.ndarray  # per column: factors_wd ..., linear_wd
    lr: np.ndarray  # per column: factors_lr ..., linear_lr
    bias_decay_lr: np.ndarray  # bias_wd, bias_lr
    t: int = 0

    @classmethod
    def initial(cls, hp: FMHyperparameters, rng: np.random.Generator, bias: float) -> _Model:
        k = hp.num_factors
        weights = np.zeros((hp.feature_dim, k + 1), np.float32)
        weights[:, :k] = rng.normal(0.0, hp.factors_init_sigma, (hp.feature_dim, k))
        return cls(
            weights,
            np.zeros_like(weights),
            np.zeros_like(weights),
            np.array([bias, 0.0, 0.0]),
            np.append(np.full(k, hp.factors_wd), hp.linear_wd).astype(np.float32),
            np.append(np.full(k, hp.factors_lr), hp.linear_lr).astype(np.float32),
            np.array([hp.bias_wd, hp.bias_lr]),
        )

    def arrays(self) -> tuple[np.ndarray, ...]:
        """What the compiled epoch updates, in its order."""
        return (
            self.weights,
            self.mean,
            self.variance,
            self.bias,
            self.decay,
            self.lr,
            self.bias_decay_lr,
        )

    def params(self) -> FMParams:
        k = self.weights.shape[1] - 1
        return FMParams(
            v=np.ascontiguousarray(self.weights[:, :k]),
            w=self.weights[:, k].copy(),
            bias=float(self.bias[0]),
        )


def _scratch(feature_dim: int, factors: int, size: int, most_values: int) -> tuple[np.ndarray, ...]:
    """Work arrays of one mini-batch, allocated once: its records' CSR arrays (ptr, idx, val),
    feature -> touched row (-1: none), the touched features, [x V | x.w] per record, the
    touched rows' gradients, the errors."""
    touched = max(1, min(feature_dim, most_values))
    return (
        np.zeros(size + 1, np.int64),
        np.zeros(max(1, most_values), np.int32),
        np.zeros(max(1, most_values), np.float32),
        np.full(feature_dim, -1, np.int64),
        np.zeros(touched, np.int64),
        np.zeros((size, factors + 1), np.float32),
        np.zeros((touched, factors + 1), np.float32),
        np.zeros(size, np.float64),
    )


def _csr_arrays(features: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """indptr, indices and data in the dtypes the compiled loop is built for (one build)."""
    return (
        features.indptr.astype(np.int64, copy=False),
        features.indices.astype(np.int32, copy=False),
        features.data.astype(np.float32, copy=False),
    )


def train(
    features: sp.csr_matrix,
    y: np.ndarray,
    hp: FMHyperparameters,
    log: Callable[[str], None] = print,
) -> FMParams:
    """Mini-batch FM in float32 with lazy Adam: each batch reads and updates only the rows of
    [V | w] its records touch."""
    if features.shape[1] != hp.feature_dim:
        raise ValueError(
            f"ClientError: records have {features.shape[1]} features, feature_dim is {hp.feature_dim}"
        )
    rng = np.random.default_rng(hp.seed)
    y = np.asarray(y, dtype=np.float32)
    binary = hp.predictor_type == "binary_classifier"
    if binary and not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("ClientError: binary_classifier labels must be 0 or 1")
    mean = float(y.mean(dtype=np.float64)) if len(y) else 0.0
    model = _Model.initial(hp, rng, np.log(mean / (1 - mean)) if binary and 0 < mean < 1 else mean)
    csr = _csr_arrays(sp.csr_matrix(features))
    n = features.shape[0]
    size = max(1, min(hp.mini_batch_size, n))
    row_values = int(np.diff(csr[0]).max()) if n else 0
    scratch = _scratch(hp.feature_dim, hp.num_factors, size, size * row_values)
    scores = np.empty(n)
    for epoch in range(hp.epochs):
        order = rng.permutation(n)
        targets = y[order]
        model.t = _epoch(
            *csr, order, targets, size, binary, model.arrays(), scratch, model.t, scores
        )
        total = _loss_sum(scores, targets, binary)
        name = "binary_classification_cross_entropy" if binary else "rmse"
        value = total / max(n, 1) if binary else float(np.sqrt(total / max(n, 1)))
        log(f"#quality_metric: host=algo-1, epoch={epoch}, train {name} <loss>={value:.6f}")
    return model.params()


def _loss_sum(score: np.ndarray, targets: np.ndarray, binary: bool) -> float:
    """Summed logistic loss, log(1 + e^score) - y score, or squared error (float64)."""
    if binary:
        return float((np.logaddexp(0.0, score) - targets * score).sum())
    error = score - targets
    return float(error @ error)


def evaluate(
    params: FMParams, features: sp.csr_matrix, y: np.ndarray, predictor_type: str
) -> dict[str, float]:
    score = predict(params, features)
    if predictor_type == "regressor":
        return {"test:rmse": float(np.sqrt(np.mean((score - y) ** 2)))}
    probability = expit(score)
    label = probability >= 0.5
    truth = y >= 0.5
    precision = (label & truth).sum() / max(label.sum(), 1)
    recall = (label & truth).sum() / max(truth.sum(), 1)
    return {
        "test:binary_classification_accuracy": float((label == truth).mean()),
        "test:binary_classification_cross_entropy": float(
            -np.mean(y * np.log(probability + 1e-12) + (1 - y) * np.log(1 - probability + 1e-12))
        ),
        "test:binary_f_beta": float(2 * precision * recall / max(precision + recall, 1e-12)),
    }


def model_artifact(params: FMParams, hp: FMHyperparameters) -> bytes:
    """model.tar.gz in SageMaker's FM layout."""
    arrays = {
        "arg:v": params.v.astype(np.float32),
        "arg:w1_weight": params.w.astype(np.float32).reshape(-1, 1),
        "arg:w0_weight": np.array([params.bias], dtype=np.float32),
    }
    meta = {
        "training_parameters": {
            "feature_dim": hp.feature_dim,
            "num_factors": hp.num_factors,
            "predictor_type": hp.predictor_type,
        },
        "producer": "localaws local stand-in for factorization-machines",
    }
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("symbol.json", json.dumps({"nodes": [], "localaws": True}))
        archive.writestr("params", mxnet_ndarray.dump(arrays))
        archive.writestr("meta.json", json.dumps(meta))
    return tar_member("model_algo-1", inner.getvalue())


def tar_member(name: str, data: bytes) -> bytes:
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return outer.getvalue()


SAGEMAKER = Path("/opt/ml")


def main(argv: list[str] | None = None) -> int:
    """Train as the algorithm's container does, on files: RecordIO channel folders, the
    hyperparameters JSON (values are strings), model.tar.gz written to the model folder."""
    parser = argparse.ArgumentParser(prog="python -m localaws.fm_trainer", description=__doc__)
    parser.add_argument("--train", type=Path, default=SAGEMAKER / "input/data/train")
    parser.add_argument("--test", type=Path, default=SAGEMAKER / "input/data/test")
    parser.add_argument(
        "--hyperparameters",
        type=Path,
        default=SAGEMAKER / "input/config/hyperparameters.json",
    )
    parser.add_argument("--model-dir", type=Path, default=SAGEMAKER / "model")
    args = parser.parse_args(argv)
    try:
        hp = FMHyperparameters.from_strings(json.loads(args.hyperparameters.read_text()))
        features, labels = recordio.read_shards(_channel_files(args.train))
        params = train(features, labels, hp)
        del features, labels
        if args.test.is_dir():
            test_features, test_labels = recordio.read_shards(_channel_files(args.test))
            for name, value in evaluate(
                params, test_features, test_labels, hp.predictor_type
            ).items():
                print(f"#test_score (algo-1) : ('{name.split(':')[1]}', {value})")
        args.model_dir.mkdir(parents=True, exist_ok=True)
        (args.model_dir / "model.tar.gz").write_bytes(model_artifact(params, hp))
    except (ValueError, FileNotFoundError) as err:
        print(f"training failed: {err}", file=sys.stderr)
        return 2
    return 0


def _channel_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise FileNotFoundError(f"ClientError: channel {folder} has no objects")
    return files


if __name__ == "__main__":
    sys.exit(main())
