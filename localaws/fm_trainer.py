"""A local stand-in for SageMaker's Factorization Machines algorithm (numpy + scipy).

Same inputs (RecordIO-protobuf Float32 rows of width feature_dim, labels), same hyperparameter
names, same artifact layout (model.tar.gz -> model_algo-1, a zip with symbol.json, params in
MXNet's NDArray-list format, meta.json), so training/fm_to_knn reads what it writes exactly as
it reads SageMaker's. The optimiser is Adam on shuffled mini-batches; the numbers are its own,
not SageMaker's.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

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


class _LazyAdam:
    """Adam that updates only the rows a mini-batch touched, as MXNet's Adam does for sparse
    gradients (lazy_update): untouched rows keep their moments.

    Every pass is in place over the touched rows: the gradient is scaled by (1 - beta1) once,
    so the second moment is kept divided by (1 - beta2) / (1 - beta1)^2 and the step's
    constants absorb that factor. One learning rate for every column (the usual case) folds into
    the step's scalar; different ones for V and w cost a multiply per column block."""

    BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8
    _SECOND_MOMENT_SCALE = (1 - BETA2) / (1 - BETA1) ** 2

    def __init__(self, param: np.ndarray, lr: float | np.ndarray):
        """lr: one rate, or one per column of param."""
        self.param, self.lr = param, lr
        rates = np.unique(np.asarray(lr, np.float64))
        self._scalar_lr = float(rates[0]) if len(rates) == 1 else None
        self.mean = np.zeros_like(param)
        self.variance = np.zeros_like(param)  # second moment / _SECOND_MOMENT_SCALE
        self.t = 0

    def step(self, rows: np.ndarray | slice, value: np.ndarray, grad: np.ndarray) -> None:
        """value: param[rows] as gathered for the forward pass; grad: its gradient, weight
        decay included (both consumed)."""
        grad *= self.GRADIENT_SCALE
        self.step_prescaled(rows, value, grad)

    GRADIENT_SCALE = 1 - BETA1

    def step_prescaled(self, rows: np.ndarray | slice, value: np.ndarray, grad: np.ndarray) -> None:
        """step() for a gradient already multiplied by GRADIENT_SCALE (the trainer folds it
        into the per-row and per-record factors of the gradient: one pass fewer)."""
        self.t += 1
        root = math.sqrt(self._SECOND_MOMENT_SCALE)
        bias_correction = math.sqrt(1 - self.BETA2**self.t) / (1 - self.BETA1**self.t)
        mean = _gather(self.mean, rows)
        mean *= self.BETA1
        mean += grad
        variance = _gather(self.variance, rows)
        variance *= self.BETA2
        np.square(grad, out=grad)
        variance += grad
        step = np.sqrt(variance, out=grad)
        step += self.EPSILON / root
        np.divide(mean, step, out=step)
        scale = bias_correction / root
        if self._scalar_lr is not None:
            step *= self._scalar_lr * scale
        else:
            step *= self.lr * scale
        value -= step
        self.mean[rows], self.variance[rows], self.param[rows] = mean, variance, value


class _ScalarAdam:
    """_LazyAdam's update for one number (the bias), in Python floats: a dozen numpy calls
    on a one-element array cost more per mini-batch than this whole step."""

    def __init__(self, lr: float):
        self.lr, self.mean, self.variance, self.t = lr, 0.0, 0.0, 0

    def step(self, value: float, grad: float) -> float:
        """The new value."""
        adam = _LazyAdam
        self.t += 1
        self.mean = adam.BETA1 * self.mean + (1 - adam.BETA1) * grad
        self.variance = adam.BETA2 * self.variance + (1 - adam.BETA2) * grad * grad
        bias_correction = math.sqrt(1 - adam.BETA2**self.t) / (1 - adam.BETA1**self.t)
        return value - self.lr * bias_correction * self.mean / (
            math.sqrt(self.variance) + adam.EPSILON
        )


def _gather(array: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
    """array[rows] as a new array (np.take is faster than fancy indexing for row lists)."""
    return np.take(array, rows, axis=0) if isinstance(rows, np.ndarray) else array[rows].copy()


try:  # scipy's own sparse-times-dense kernels, called on the batch's arrays directly
    from scipy.sparse._sparsetools import csc_matvecs, csr_matvecs
except ImportError:  # pragma: no cover - a scipy that moved them: the public (slower) path
    csc_matvecs = csr_matvecs = None


@dataclass
class _Batch:
    """A mini-batch restricted to the feature columns it touches, as CSR arrays over those
    columns: per stored value its row in the batch, its column among `columns`, the value and
    its square; `indptr` where each row starts.

    The products with the batch use scipy's CSR/CSC kernels on these arrays: at ~3,000 values
    building a scipy matrix costs as much as the product itself, and X^T needs no transpose
    (the CSR arrays of X are the CSC arrays of X^T)."""

    row: np.ndarray
    column: np.ndarray
    value: np.ndarray
    squared: np.ndarray
    indptr: np.ndarray
    columns: np.ndarray  # feature ids, ascending

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.indptr) - 1, len(self.columns)

    @property
    def x(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.value, self.column, self.indptr), shape=self.shape)

    def times(self, dense: np.ndarray) -> np.ndarray:
        """X @ dense (dense: float32, one row per column of the batch)."""
        out = np.zeros((self.shape[0], dense.shape[1]), np.float32)
        if csr_matvecs is None:
            out += self.x @ dense
        else:
            csr_matvecs(
                *self.shape, dense.shape[1], self.indptr, self.column, self.value, dense, out
            )
        return out

    def add_transposed_times(self, scale: np.ndarray, dense: np.ndarray, out: np.ndarray) -> None:
        """out += X^T diag(scale) @ dense: one product per stored value, not per factor."""
        data = self.value * scale[self.row]
        if csc_matvecs is None:
            out += sp.csc_matrix((data, self.column, self.indptr), shape=self.shape[::-1]) @ dense
        else:
            size, n_columns = self.shape
            csc_matvecs(n_columns, size, dense.shape[1], self.indptr, self.column, data, dense, out)

    def transposed_times(self, scale: np.ndarray) -> np.ndarray:
        """X^T diag(scale), dense (a check of the product the gradient uses)."""
        out = np.zeros(self.shape[::-1], np.float32)
        self.add_transposed_times(scale, np.eye(self.shape[0], dtype=np.float32), out)
        return out


BATCHES_PER_GROUP = 64  # mini-batches laid out together: fewer, larger numpy calls


def _batches(
    features: sp.csr_matrix, order: np.ndarray, size: int
) -> Iterator[tuple[np.ndarray, _Batch]]:
    """The mini-batches of one epoch (rows in `order`); the next group of them is laid out in
    a second thread while this one trains (numpy releases the GIL in its loops)."""
    span = size * BATCHES_PER_GROUP
    starts = range(0, len(order), span)
    if not len(starts):
        return
    with ThreadPoolExecutor(max_workers=1) as pool:

        def lay_out(start: int) -> Future:
            return pool.submit(_Group.lay_out, features, order[start : start + span], size)

        coming = lay_out(0)
        for following in [*starts[1:], None]:
            group = coming.result()
            coming = None if following is None else lay_out(following)
            yield from group.batches()


@dataclass
class _Group:
    """Consecutive mini-batches of `size` rows, laid out together: one gather of their values,
    one pass to find each batch's distinct features."""

    rows: np.ndarray
    size: int
    row_start: np.ndarray  # where each row's values start
    row: np.ndarray  # per value: its row within its batch
    column: np.ndarray  # per value: its column among its batch's columns
    value: np.ndarray
    squared: np.ndarray
    unique_start: np.ndarray  # each batch's first (batch, feature)
    feature_at: np.ndarray  # the feature of each (batch, feature)

    @classmethod
    def lay_out(cls, features: sp.csr_matrix, rows: np.ndarray, size: int) -> _Group:
        starts = features.indptr[rows].astype(np.int64)
        counts = features.indptr[rows + 1] - starts
        row_start = np.zeros(len(rows) + 1, np.int32)
        np.cumsum(counts, out=row_start[1:])
        n_values = int(row_start[-1])
        positions = np.repeat(starts - row_start[:-1], counts) + np.arange(n_values)
        feature, value = features.indices[positions], features.data[positions]
        row = np.repeat(np.arange(len(rows), dtype=np.int32), counts)
        batch = row // size
        n_batches = -(-len(rows) // size)
        # each batch's distinct features, ascending, and each value's place among them
        key = batch.astype(np.int64) * features.shape[1] + feature
        unique_key, place = _distinct(key, n_batches * features.shape[1])
        unique_batch = unique_key // features.shape[1]
        unique_start = np.searchsorted(unique_batch, np.arange(n_batches + 1))
        column = (place - unique_start[batch]).astype(np.int32)
        feature_at = unique_key - unique_batch * features.shape[1]
        value = value.astype(np.float32)
        return cls(
            rows,
            size,
            row_start,
            row - batch * size,
            column,
            value,
            value * value,
            unique_start,
            feature_at,
        )

    def batches(self) -> Iterator[tuple[np.ndarray, _Batch]]:
        """Each batch's dataset rows and its arrays (views into the group's)."""
        for b in range(len(self.unique_start) - 1):
            first, last = b * self.size, min(b * self.size + self.size, len(self.rows))
            v0, v1 = int(self.row_start[first]), int(self.row_start[last])
            u0, u1 = int(self.unique_start[b]), int(self.unique_start[b + 1])
            yield (
                self.rows[first:last],
                _Batch(
                    self.row[v0:v1],
                    self.column[v0:v1],
                    self.value[v0:v1],
                    self.squared[v0:v1],
                    self.row_start[first : last + 1] - np.int32(v0),
                    self.feature_at[u0:u1],
                ),
            )


def _distinct(key: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys, ascending, and each key's place among them (np.unique's result):
    by marking a table of all n_keys when that is not much larger than the keys (a few
    linear passes), else by sorting."""
    if n_keys > 8 * len(key) + (1 << 16):
        return np.unique(key, return_inverse=True)
    present = np.zeros(n_keys, bool)
    present[key] = True
    distinct = np.flatnonzero(present)
    place = np.empty(n_keys, np.int32)  # read only where present
    place[distinct] = np.arange(len(distinct), dtype=np.int32)
    return distinct, place[key]


@dataclass
class _Model:
    """The weights being trained: [v | w] as one (feature_dim, num_factors + 1) float32 matrix,
    so that a batch gathers, multiplies and updates both in one pass; the bias apart."""

    factors: int
    weights: np.ndarray  # [:, :factors] = v, [:, factors] = w
    bias: np.ndarray  # (1,) float64
    weights_opt: _LazyAdam
    bias_opt: _ScalarAdam
    factors_wd: float
    linear_wd: float
    bias_wd: float

    @classmethod
    def initial(cls, hp: FMHyperparameters, rng: np.random.Generator, bias: float) -> _Model:
        k = hp.num_factors
        weights = np.zeros((hp.feature_dim, k + 1), np.float32)
        weights[:, :k] = rng.normal(0.0, hp.factors_init_sigma, (hp.feature_dim, k))
        column_lr = np.append(np.full(k, hp.factors_lr), hp.linear_lr).astype(np.float32)
        bias_array = np.array([bias])
        return cls(
            k,
            weights,
            bias_array,
            _LazyAdam(weights, column_lr),
            _ScalarAdam(hp.bias_lr),
            hp.factors_wd,
            hp.linear_wd,
            hp.bias_wd,
        )

    def params(self) -> FMParams:
        k = self.factors
        return FMParams(
            v=np.ascontiguousarray(self.weights[:, :k]),
            w=self.weights[:, k].copy(),
            bias=float(self.bias[0]),
        )


def train(
    features: sp.csr_matrix,
    y: np.ndarray,
    hp: FMHyperparameters,
    log: Callable[[str], None] = print,
) -> FMParams:
    """Mini-batch FM in float32: each batch works on the columns it touches only."""
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
    features = sp.csr_matrix(features, dtype=np.float32)
    n = features.shape[0]
    scores = np.empty(n)
    for epoch in range(hp.epochs):
        order = rng.permutation(n)
        targets = y[order]
        done = 0
        for rows, batch in _batches(features, order, hp.mini_batch_size):
            scores[done : done + len(rows)] = _step(
                batch, targets[done : done + len(rows)], model, binary
            )
            done += len(rows)
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


def _step(batch: _Batch, targets: np.ndarray, model: _Model, binary: bool) -> np.ndarray:
    """One mini-batch: gradients of the rows it touches, then their updates; its scores."""
    weights = np.take(model.weights, batch.columns, axis=0)
    score, grad, bias_grad = _gradients(
        batch, targets, weights, model, binary, _LazyAdam.GRADIENT_SCALE
    )
    model.bias[0] = model.bias_opt.step(model.bias[0], bias_grad / _LazyAdam.GRADIENT_SCALE)
    model.weights_opt.step_prescaled(batch.columns, weights, grad)
    return score


def _gradients(
    batch: _Batch,
    targets: np.ndarray,
    weights: np.ndarray,
    model: _Model,
    binary: bool,
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The batch's scores (before the update), and the gradients of its mean loss (weight
    decay included) for the touched rows of [V | w] and for the bias, times `scale` (folded
    into the per-record and per-row factors, so it costs no pass over the rows).

    score = bias + x.w + 0.5 (|x V|^2 - sum_j x_j^2 |v_j|^2); with error e = d loss / d score,
    the gradient of row j of [V | w] is sum_i e_i x_ij [x_i V - x_ij v_j | 1].
    """
    k, size = model.factors, batch.shape[0]
    xw = batch.times(weights)  # [x V | x.w]
    linear = xw[:, k].copy()
    xw[:, k] = 0.0
    norms = np.einsum("ij,ij->i", weights, weights) - weights[:, k] * weights[:, k]  # |v_j|^2
    self_terms = np.bincount(batch.row, batch.squared * norms[batch.column], minlength=size)
    pairs = np.einsum("ij,ij->i", xw, xw)  # |x V|^2
    score = model.bias[0] + linear + 0.5 * (pairs - self_terms)
    error = expit(score) - targets if binary else score - targets  # logistic / squared
    error = (error * (scale / size)).astype(np.float32)  # gradients of the batch mean
    self_grad = np.bincount(batch.column, batch.squared * error[batch.row], minlength=len(weights))
    shrink = (scale * model.factors_wd - self_grad).astype(np.float32)
    grad = weights * shrink[:, None]
    grad[:, k] = weights[:, k] * (scale * model.linear_wd)  # w: no self term, its own decay
    xw[:, k] = 1.0
    batch.add_transposed_times(error, xw, grad)
    bias_grad = float(error.sum(dtype=np.float64)) + scale * model.bias_wd * float(model.bias[0])
    return score, grad, bias_grad


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
