"""The local FM trainer's vectorised pieces: the mini-batch layout, the gradients (against finite
differences of a plain dense FM), training itself and the container-style command line."""

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


def test_batches_cover_the_epoch_in_order_with_local_columns(monkeypatch):
    monkeypatch.setattr(fm_trainer, "BATCHES_PER_GROUP", 3)  # several groups, a short last one
    features = _features(1000)
    order = np.random.default_rng(1).permutation(1000)
    seen = []
    for rows, batch in fm_trainer._batches(features, order, 64):
        block = features[rows]
        assert set(batch.columns) == set(block.indices)
        assert (np.diff(batch.columns) > 0).all()
        np.testing.assert_array_equal(batch.x.toarray(), block[:, batch.columns].toarray())
        scale = np.random.default_rng(2).random(len(rows)).astype(np.float32)
        np.testing.assert_allclose(
            batch.transposed_times(scale), (batch.x.toarray() * scale[:, None]).T, rtol=1e-6
        )
        seen.append(rows)
    np.testing.assert_array_equal(np.concatenate(seen), order)
    assert len(seen) == -(-1000 // 64)


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
    _, batch = next(fm_trainer._batches(features, np.arange(50), 50))
    weights = np.take(model.weights, batch.columns, axis=0)
    score, grad, bias_grad = fm_trainer._gradients(
        batch, targets.astype(np.float32), weights.copy(), model, binary
    )
    loss = fm_trainer._loss_sum(score, targets, binary)
    _, scaled, scaled_bias = fm_trainer._gradients(
        batch, targets.astype(np.float32), weights.copy(), model, binary, scale=0.1
    )
    np.testing.assert_allclose(scaled, 0.1 * grad, rtol=1e-5, atol=1e-9)
    assert scaled_bias == pytest.approx(0.1 * bias_grad)
    v = model.weights[:, :3].astype(np.float64)
    w = model.weights[:, 3].astype(np.float64)

    def objective(v, w, bias):
        return _dense_loss(features, targets, v, w, bias, hp, batch.columns, binary)

    expected_mean, expected_sum = objective(v, w, 0.3)
    assert loss == pytest.approx(expected_sum, rel=1e-5)
    step = 1e-6
    for local, feature in enumerate(batch.columns):
        for factor in range(4):  # three factors, then w
            up, down = (v.copy(), w.copy()), (v.copy(), w.copy())
            if factor < 3:
                up[0][feature, factor] += step
                down[0][feature, factor] -= step
            else:
                up[1][feature] += step
                down[1][feature] -= step
            numeric = (objective(*up, 0.3)[0] - objective(*down, 0.3)[0]) / (2 * step)
            assert grad[local, factor] == pytest.approx(numeric, rel=2e-3, abs=1e-6)
    numeric_bias = (objective(v, w, 0.3 + step)[0] - objective(v, w, 0.3 - step)[0]) / (2 * step)
    assert bias_grad == pytest.approx(numeric_bias, rel=1e-4)
    assert expected_mean > 0


def test_lazy_adam_moves_only_the_touched_rows():
    param = np.ones((5, 2), np.float32)
    adam = fm_trainer._LazyAdam(param, 0.1)
    rows = np.array([1, 3])
    adam.step(rows, param[rows].copy(), np.array([[1, -1], [2, 0]], np.float32))
    # first Adam step: lr * sign(g) where g != 0 (bias-corrected moments)
    np.testing.assert_allclose(param[rows], [[0.9, 1.1], [0.9, 1.0]], rtol=1e-5)
    np.testing.assert_array_equal(param[[0, 2, 4]], 1)
    np.testing.assert_array_equal(adam.mean[[0, 2, 4]], 0)


def test_scalar_adam_steps_as_lazy_adam_on_one_number():
    param = np.array([0.5])
    lazy, scalar, value = fm_trainer._LazyAdam(param, 0.05), fm_trainer._ScalarAdam(0.05), 0.5
    for grad in (0.3, -1.2, 0.0, 2.5, -0.01):
        lazy.step(slice(None), param.copy(), np.array([grad]))
        value = scalar.step(value, grad)
        assert value == pytest.approx(param[0], rel=1e-12)


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
