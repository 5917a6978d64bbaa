"""The local FM trainer's compiled pieces: a mini-batch's records and touched rows, the gradients
(against finite differences of a plain dense FM), lazy Adam, training itself and the
container-style command line."""

import json

import numpy as np
import pytest
import scipy.sparse as sp

from localaws import fm_trainer
from training import fm_to_knn, recordio
from training.features import implicit_target, one_hot


def _features(rows=300, columns=40, seed=0):
    """Real-valued rows with 0 to 6 values each (some empty), not only one-hot ones."""
    rng = np.random.default_rng(seed)
    matrix = sp.random(
        rows, columns, density=0.06, format="csr", dtype=np.float32, random_state=rng
    )
    matrix.data = (matrix.data * 2 - 1).astype(np.float32)
    assert (np.diff(matrix.indptr) == 0).any()  # empty rows are in
    return matrix


def _gathered(features, order, first, last):
    """The compiled loop's copy of records order[first:last] and their touched rows."""
    indptr, indices, data = fm_trainer._csr_arrays(features)
    most = int(np.diff(indptr).max()) * (last - first)
    ptr, idx, val, local, columns, *_ = fm_trainer._scratch(
        features.shape[1], 2, last - first, most
    )
    fm_trainer._gather(indptr, indices, data, order, first, last, ptr, idx, val)
    touched = fm_trainer._touch(ptr, idx, last - first, local, columns)
    return (ptr, idx, val), local, columns[:touched]


def test_a_batch_is_its_records_with_each_feature_numbered_once():
    features = _features(1000)
    order = np.random.default_rng(1).permutation(1000)
    (ptr, idx, val), local, columns = _gathered(features, order, 128, 192)
    block = features[order[128:192]]
    np.testing.assert_array_equal(ptr[:65], block.indptr)
    np.testing.assert_array_equal(idx[: block.nnz], block.indices)
    np.testing.assert_array_equal(val[: block.nnz], block.data)
    assert sorted(columns) == sorted(set(block.indices))
    np.testing.assert_array_equal(local[columns], np.arange(len(columns)))
    assert (np.delete(local, columns) == -1).all()


def _dense_loss(features, targets, v, w, bias, hp, columns, binary):
    """A plain dense FM in float64: the objective (mean logistic loss, or half the mean squared
    error, plus the decay of the touched rows) and the loss sum the trainer logs from."""
    x = features.toarray().astype(np.float64)
    xv = x @ v
    score = bias + x @ w + 0.5 * ((xv**2).sum(1) - (x**2) @ (v**2).sum(1))
    if binary:
        loss = np.logaddexp(0, score) - targets * score
        objective = loss.mean()
    else:
        loss = (score - targets) ** 2
        objective = 0.5 * loss.mean()
    decay = hp.factors_wd * (v[columns] ** 2).sum() + hp.linear_wd * (w[columns] ** 2).sum()
    return objective + 0.5 * (decay + hp.bias_wd * bias**2), loss.sum()


@pytest.mark.parametrize("binary", [True, False])
def test_gradients_match_finite_differences(binary):
    features = _features(50, 12)
    rng = np.random.default_rng(3)
    targets = rng.integers(0, 2, 50).astype(np.float32) if binary else rng.normal(3, 1, 50)
    hp = fm_trainer.FMHyperparameters(
        feature_dim=12,
        num_factors=3,
        predictor_type="binary_classifier" if binary else "regressor",
        bias_wd=0.05,
        linear_wd=0.02,
        factors_wd=0.03,
    )
    model = fm_trainer._Model.initial(hp, rng, 0.3)
    model.weights[:] = rng.normal(0, 0.5, model.weights.shape)
    batch, local, columns = _gathered(features, np.arange(50), 0, 50)
    xw, score = np.zeros((50, 4), np.float32), np.zeros(50)
    fm_trainer._forward(*batch, 50, model.weights, 0.3, xw, score)
    loss = fm_trainer._loss_sum(score, targets, binary)
    error = ((1 / (1 + np.exp(-score)) if binary else score) - targets) / 50
    grad = np.zeros((len(columns), 4), np.float32)
    fm_trainer._row_gradients(*batch, 50, model.weights, local, len(columns), error, xw, grad)
    grad += model.decay * model.weights[columns]  # as _adam_rows adds it
    bias_grad = error.sum() + hp.bias_wd * 0.3  # as _epoch adds it
    v = model.weights[:, :3].astype(np.float64)
    w = model.weights[:, 3].astype(np.float64)

    def objective(v, w, bias):
        return _dense_loss(features, targets, v, w, bias, hp, columns, binary)

    expected_mean, expected_sum = objective(v, w, 0.3)
    assert loss == pytest.approx(expected_sum, rel=1e-5)
    step = 1e-6
    for local_row, feature in enumerate(columns):
        for factor in range(4):  # three factors, then w
            up, down = (v.copy(), w.copy()), (v.copy(), w.copy())
            if factor < 3:
                up[0][feature, factor] += step
                down[0][feature, factor] -= step
            else:
                up[1][feature] += step
                down[1][feature] -= step
            numeric = (objective(*up, 0.3)[0] - objective(*down, 0.3)[0]) / (2 * step)
            assert grad[local_row, factor] == pytest.approx(numeric, rel=2e-3, abs=1e-6)
    numeric_bias = (objective(v, w, 0.3 + step)[0] - objective(v, w, 0.3 - step)[0]) / (2 * step)
    assert bias_grad == pytest.approx(numeric_bias, rel=1e-4)
    assert expected_mean > 0


def test_lazy_adam_moves_only_the_touched_rows():
    param = np.ones((5, 2), np.float32)
    mean, variance = np.zeros_like(param), np.zeros_like(param)
    rows = np.array([1, 3])
    grad = np.array([[1, -1], [2, 0]], np.float32)
    no_decay, lr = np.zeros(2, np.float32), np.full(2, 0.1, np.float32)
    fm_trainer._adam_rows(param, mean, variance, rows, 2, grad, no_decay, lr, 1)
    # first Adam step: lr * sign(g) where g != 0 (bias-corrected moments)
    np.testing.assert_allclose(param[rows], [[0.9, 1.1], [0.9, 1.0]], rtol=1e-5)
    np.testing.assert_array_equal(param[[0, 2, 4]], 1)
    np.testing.assert_array_equal(mean[[0, 2, 4]], 0)


def test_adam_is_the_textbook_update_in_float64_and_float32():
    value, mean, variance = 0.5, 0.0, 0.0
    for t, grad in enumerate((0.3, -1.2, 0.0, 2.5, -0.01), start=1):
        correction = np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        expected_mean = 0.9 * mean + 0.1 * grad
        expected_variance = 0.999 * variance + 0.001 * grad**2
        expected = value - 0.05 * correction * expected_mean / (np.sqrt(expected_variance) + 1e-8)
        value, mean, variance = fm_trainer._adam(value, mean, variance, grad, 0.05 * correction)
        assert (value, mean, variance) == pytest.approx(
            (expected, expected_mean, expected_variance), rel=1e-12
        )
        single = fm_trainer._adam(*np.float32([value, mean, variance, grad, 0.05]))
        double = fm_trainer._adam(value, mean, variance, grad, 0.05)
        assert single == pytest.approx(double, rel=2e-5)  # float32 rounding


def test_training_learns_which_items_a_user_takes():
    rng = np.random.default_rng(4)
    users = rng.integers(0, 60, 3000)
    items = (users % 6) * 5 + rng.integers(0, 5, 3000)  # each user keeps to 5 of 30 items
    examples = implicit_target(users, items, 30, 2, seed=5)
    matrix = one_hot(examples, 60, 30)
    hp = fm_trainer.FMHyperparameters(
        feature_dim=90, num_factors=8, predictor_type="binary_classifier", epochs=8
    )
    lines = []
    params = fm_trainer.train(matrix, examples.label, hp, log=lines.append)
    assert len(lines) == 8
    assert "epoch=7, train binary_classification_cross_entropy" in lines[-1]
    metrics = fm_trainer.evaluate(params, matrix, examples.label, "binary_classifier")
    assert metrics["test:binary_classification_accuracy"] > 0.9
    assert params.v.dtype == np.float32


def test_command_line_trains_from_channel_files(tmp_path):
    rng = np.random.default_rng(6)
    examples = implicit_target(rng.integers(0, 20, 400), rng.integers(0, 15, 400), 15, 1)
    matrix = one_hot(examples, 20, 15)
    for channel, part in (("train", slice(0, 600)), ("test", slice(600, None))):
        recordio.write_shards(
            tmp_path / channel,
            channel,
            matrix[part],
            examples.label[part],
            records_per_shard=250,
        )
    (tmp_path / "hp.json").write_text(
        json.dumps({"feature_dim": "35", "num_factors": "4", "predictor_type": "binary_classifier"})
    )
    args = ["--train", str(tmp_path / "train"), "--test", str(tmp_path / "test")]
    args += ["--hyperparameters", str(tmp_path / "hp.json"), "--model-dir", str(tmp_path / "m")]
    assert fm_trainer.main(args) == 0
    params = fm_to_knn.read_fm_model(tmp_path / "m" / "model.tar.gz")
    assert params.v.shape == (35, 4)
    (tmp_path / "hp.json").write_text(json.dumps({"feature_dim": "35"}))
    assert fm_trainer.main(args) == 2  # missing required hyperparameters
