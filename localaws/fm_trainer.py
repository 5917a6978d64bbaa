"""A local stand-in for SageMaker's Factorization Machines algorithm (numpy + scipy).

Same inputs (RecordIO-protobuf Float32 rows of width feature_dim, labels), same hyperparameter
names, same artifact layout (model.tar.gz -> model_algo-1, a zip with symbol.json, params in
MXNet's NDArray-list format, meta.json), so training/fm_to_knn reads what it writes exactly as
it reads SageMaker's. The optimiser is Adam on shuffled mini-batches; the numbers are its own,
not SageMaker's.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import scipy.sparse as sp

from training import mxnet_ndarray
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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def predict(params: FMParams, features: sp.csr_matrix) -> np.ndarray:
    """The raw FM score: w0 + <w, x> + sum over pairs <v_i, v_j> x_i x_j."""
    xv = features @ params.v
    pairwise = 0.5 * ((xv**2).sum(axis=1) - features.multiply(features) @ (params.v**2).sum(axis=1))
    return params.bias + features @ params.w + np.asarray(pairwise).ravel()


class _Adam:
    def __init__(self, shape, lr: float):
        self.m, self.v, self.lr, self.t = np.zeros(shape), np.zeros(shape), lr, 0

    def step(self, value: np.ndarray, grad: np.ndarray) -> None:
        self.t += 1
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.999 * self.v + 0.001 * grad**2
        m_hat = self.m / (1 - 0.9**self.t)
        v_hat = self.v / (1 - 0.999**self.t)
        value -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def train(
    features: sp.csr_matrix,
    y: np.ndarray,
    hp: FMHyperparameters,
    log: Callable[[str], None] = print,
) -> FMParams:
    if features.shape[1] != hp.feature_dim:
        raise ValueError(
            f"ClientError: records have {features.shape[1]} features, feature_dim is {hp.feature_dim}"
        )
    rng = np.random.default_rng(hp.seed)
    y = np.asarray(y, dtype=np.float64)
    binary = hp.predictor_type == "binary_classifier"
    if binary and not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("ClientError: binary_classifier labels must be 0 or 1")
    mean = float(y.mean()) if len(y) else 0.0
    params = FMParams(
        v=rng.normal(0.0, hp.factors_init_sigma, (hp.feature_dim, hp.num_factors)),
        w=np.zeros(hp.feature_dim),
        bias=float(np.log(mean / (1 - mean))) if binary and 0 < mean < 1 else mean,
    )
    bias = np.array([params.bias])
    optimisers = (
        _Adam(1, hp.bias_lr),
        _Adam(params.w.shape, hp.linear_lr),
        _Adam(params.v.shape, hp.factors_lr),
    )
    features = sp.csr_matrix(features, dtype=np.float64)
    for epoch in range(hp.epochs):
        order = rng.permutation(features.shape[0])
        shuffled, targets = features[order], y[order]
        squared = shuffled.multiply(shuffled).tocsr()
        total = 0.0
        for start in range(0, features.shape[0], hp.mini_batch_size):
            batch = slice(start, start + hp.mini_batch_size)
            xb, x2b, yb = shuffled[batch], squared[batch], targets[batch]
            xv = xb @ params.v
            score = bias[0] + xb @ params.w + 0.5 * ((xv**2).sum(1) - x2b @ (params.v**2).sum(1))
            prediction = _sigmoid(score) if binary else score
            error = prediction - yb  # d loss / d score for squared and logistic loss
            if binary:
                total += float(
                    -(
                        yb * np.log(prediction + 1e-12) + (1 - yb) * np.log(1 - prediction + 1e-12)
                    ).sum()
                )
            else:
                total += float((error**2).sum())
            n = len(yb)
            grad_v = (xb.T @ (error[:, None] * xv) - params.v * (x2b.T @ error)[:, None]) / n
            optimisers[0].step(bias, np.array([error.mean()]) + hp.bias_wd * bias)
            optimisers[1].step(params.w, xb.T @ error / n + hp.linear_wd * params.w)
            optimisers[2].step(params.v, grad_v + hp.factors_wd * params.v)
        name = "binary_classification_cross_entropy" if binary else "rmse"
        value = total / max(len(y), 1) if binary else float(np.sqrt(total / max(len(y), 1)))
        log(f"#quality_metric: host=algo-1, epoch={epoch}, train {name} <loss>={value:.6f}")
    params.bias = float(bias[0])
    return params


def evaluate(
    params: FMParams, features: sp.csr_matrix, y: np.ndarray, predictor_type: str
) -> dict[str, float]:
    score = predict(params, sp.csr_matrix(features, dtype=np.float64))
    if predictor_type == "regressor":
        return {"test:rmse": float(np.sqrt(np.mean((score - y) ** 2)))}
    probability = _sigmoid(score)
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
