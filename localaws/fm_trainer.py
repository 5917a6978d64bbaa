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
    constants absorb that factor."""

    BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8
    _SECOND_MOMENT_SCALE = (1 - BETA2) / (1 - BETA1) ** 2

    def __init__(self, param: np.ndarray, lr: float | np.ndarray):
        """lr: one rate, or one per column of param."""
        self.param, self.lr = param, lr
        self.mean = np.zeros_like(param)
        self.variance = np.zeros_like(param)  # second moment / _SECOND_MOMENT_SCALE
        self.t = 0

    def step(self, rows: np.ndarray | slice, value: np.ndarray, grad: np.ndarray) -> None:
        """value: param[rows] as gathered for the forward pass; grad: its gradient, weight
        decay included (both consumed)."""
        self.t += 1
        root = math.sqrt(self._SECOND_MOMENT_SCALE)
        bias_correction = math.sqrt(1 - self.BETA2**self.t) / (1 - self.BETA1**self.t)
        grad *= 1 - self.BETA1
        mean = self.mean[rows]
        mean *= self.BETA1
        mean += grad
        variance = self.variance[rows]
        variance *= self.BETA2
        grad *= grad
        variance += grad
        step = np.sqrt(variance, out=grad)
        step += self.EPSILON / root
        np.divide(mean, step, out=step)
        step *= self.lr * bias_correction / root
        value -= step
        self.mean[rows], self.variance[rows], self.param[rows] = mean, variance, value


@dataclass
class _Batch:
    """A mini-batch restricted to the feature columns it touches.

    Per stored value: its row in the batch and its column among `columns`; `x` is the batch as
    (rows x columns) CSR. Its transpose is kept as CSR arrays (values ordered by column), built
    scaled by each row's error when the gradient needs it (no scipy transpose).
    """

    row: np.ndarray
    column: np.ndarray
    value: np.ndarray
    columns: np.ndarray  # feature ids, ascending
    x: sp.csr_matrix
    row_by_column: np.ndarray  # the rows of the values, ordered by column
    value_by_column: np.ndarray
    column_ptr: np.ndarray  # where each column starts in that order

    def transposed_times(self, scale: np.ndarray) -> sp.csr_matrix:
        """X^T diag(scale), as CSR: one product per stored value, not per factor."""
        data = self.value_by_column * scale[self.row_by_column]
        return sp.csr_matrix((data, self.row_by_column, self.column_ptr), self.x.shape[::-1])


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
    """Consecutive mini-batches of `size` rows, laid out with one gather and one sort."""

    rows: np.ndarray
    size: int
    row_start: np.ndarray  # where each row's values start
    row: np.ndarray  # per value: its row within its batch
    column: np.ndarray  # per value: its column among its batch's columns
    value: np.ndarray
    by_column: np.ndarray  # value order by (batch, feature)
    unique_at: np.ndarray  # where each (batch, feature) starts in that order
    unique_start: np.ndarray  # each batch's first (batch, feature)
    feature_at: np.ndarray  # the feature of each (batch, feature)

    @classmethod
    def lay_out(cls, features: sp.csr_matrix, rows: np.ndarray, size: int) -> _Group:
        starts = features.indptr[rows].astype(np.int64)
        counts = features.indptr[rows + 1] - starts
        row_start = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(counts, out=row_start[1:])
        n_values = int(row_start[-1])
        positions = np.repeat(starts - row_start[:-1], counts) + np.arange(n_values)
        feature, value = features.indices[positions], features.data[positions]
        row = np.repeat(np.arange(len(rows)), counts)
        batch = row // size
        # values by (batch, feature): each batch's values keep their range, ordered by feature
        key = batch * features.shape[1] + feature
        by_key = np.argsort(key)
        sorted_key = key[by_key]
        sorted_batch = batch[by_key]
        new = np.ones(n_values, bool)
        new[1:] = sorted_key[1:] != sorted_key[:-1]
        unique_at = np.flatnonzero(new)
        n_batches = -(-len(rows) // size)
        unique_start = np.searchsorted(sorted_batch[unique_at], np.arange(n_batches + 1))
        column = np.empty(n_values, np.int64)
        column[by_key] = np.cumsum(new) - 1 - unique_start[sorted_batch]
        feature_at = sorted_key[unique_at] - sorted_batch[unique_at] * features.shape[1]
        local_row = row - batch * size
        return cls(
            rows,
            size,
            row_start,
            local_row,
            column,
            value,
            by_key,
            unique_at,
            unique_start,
            feature_at,
        )

    def batches(self) -> Iterator[tuple[np.ndarray, _Batch]]:
        row_by_column, value_by_column = self.row[self.by_column], self.value[self.by_column]
        for b in range(len(self.unique_start) - 1):
            first, last = b * self.size, min(b * self.size + self.size, len(self.rows))
            v0, v1 = int(self.row_start[first]), int(self.row_start[last])
            u0, u1 = int(self.unique_start[b]), int(self.unique_start[b + 1])
            values = (self.row[v0:v1], self.column[v0:v1], self.value[v0:v1])
            x = sp.csr_matrix(
                (values[2], values[1], self.row_start[first : last + 1] - v0),
                shape=(last - first, u1 - u0),
            )
            transposed = (
                row_by_column[v0:v1],
                value_by_column[v0:v1],
                np.append(self.unique_at[u0:u1], v1) - v0,
            )
            yield self.rows[first:last], _Batch(*values, self.feature_at[u0:u1], x, *transposed)


@dataclass
class _Model:
    """The weights being trained: [v | w] as one (feature_dim, num_factors + 1) float32 matrix,
    so that a batch gathers, multiplies and updates both in one pass; the bias apart."""

    factors: int
    weights: np.ndarray  # [:, :factors] = v, [:, factors] = w
    bias: np.ndarray  # (1,) float64
    weights_opt: _LazyAdam
    bias_opt: _LazyAdam
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
            _LazyAdam(bias_array, hp.bias_lr),
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
    for epoch in range(hp.epochs):
        order = rng.permutation(n)
        total = 0.0
        for rows, batch in _batches(features, order, hp.mini_batch_size):
            total += _step(batch, y[rows], model, binary)
        name = "binary_classification_cross_entropy" if binary else "rmse"
        value = total / max(n, 1) if binary else float(np.sqrt(total / max(n, 1)))
        log(f"#quality_metric: host=algo-1, epoch={epoch}, train {name} <loss>={value:.6f}")
    return model.params()


def _step(batch: _Batch, targets: np.ndarray, model: _Model, binary: bool) -> float:
    """One mini-batch: gradients of the rows it touches, then their updates; its loss sum."""
    weights = np.take(model.weights, batch.columns, axis=0)
    loss, grad, bias_grad = _gradients(batch, targets, weights, model, binary)
    model.bias_opt.step(slice(None), model.bias.copy(), bias_grad)
    model.weights_opt.step(batch.columns, weights, grad)
    return loss


def _gradients(
    batch: _Batch, targets: np.ndarray, weights: np.ndarray, model: _Model, binary: bool
) -> tuple[float, np.ndarray, np.ndarray]:
    """The batch's loss sum, and the gradients of its mean loss (weight decay included) for
    the touched rows of [V | w] and for the bias.

    score = bias + x.w + 0.5 (|x V|^2 - sum_j x_j^2 |v_j|^2); with error e = d loss / d score,
    the gradient of row j of [V | w] is sum_i e_i x_ij [x_i V - x_ij v_j | 1].
    """
    k, size = model.factors, batch.x.shape[0]
    # whole rows of [V | w] at a time (contiguous), the w column's share taken back out
    w_rows = weights[:, k]
    xw = batch.x @ weights  # [x V | x.w]
    linear = xw[:, k].copy()
    norms = np.einsum("ij,ij->i", weights, weights) - w_rows * w_rows  # |v_j|^2
    squared = batch.value * batch.value
    self_terms = np.bincount(batch.row, squared * norms[batch.column], minlength=size)
    pairs = np.einsum("ij,ij->i", xw, xw) - linear * linear  # |x V|^2
    score = model.bias[0] + linear + 0.5 * (pairs - self_terms)
    if binary:  # logistic loss: log(1 + e^score) - y score
        loss = float((np.logaddexp(0.0, score) - targets * score).sum())
        error = expit(score) - targets
    else:
        error = score - targets
        loss = float(error @ error)
    error = (error / size).astype(np.float32)  # gradients of the batch mean
    xw[:, k] = 1.0
    grad = batch.transposed_times(error) @ xw
    self_grad = np.bincount(batch.column, squared * error[batch.row], minlength=len(weights))
    shrink = (self_grad - model.factors_wd).astype(np.float32)
    grad -= weights * shrink[:, None]
    grad[:, k] += w_rows * (shrink + model.linear_wd)  # w has no self term, its own decay
    bias_grad = error.sum(dtype=np.float64) + model.bias_wd * model.bias
    return loss, grad, bias_grad


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
