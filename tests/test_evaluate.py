import json

import numpy as np
import pytest

from bench.notebook_reference import notebook_evaluation
from training.evaluate import (
    Holdout,
    broadcast,
    exclude_seen,
    popularity_ranking,
    read_knn_transform_output,
    read_personalize_batch_output,
    score,
    write_report,
)


def _one_user(recommended, held, train_items=(), n_items=40):
    holdout = Holdout(
        n_users=1,
        n_items=n_items,
        holdout_user=np.zeros(len(held), np.int64),
        holdout_item=np.asarray(held, np.int64),
        train_user=np.zeros(len(train_items), np.int64),
        train_item=np.asarray(train_items, np.int64),
    )
    return np.asarray([recommended]), holdout


def test_hand_computed_r_0101():
    # the notebook's worked example: r = [0, 1, 0, 1] with two held-out items
    recs, holdout = _one_user([9, 1, 8, 2], held=[1, 2])
    m = score(recs, holdout, [4])
    assert m["aws_mrr"] == pytest.approx(0.5)
    assert m["mrr@4"] == pytest.approx(0.5)
    assert m["precision@4"] == pytest.approx(0.5)
    assert m["recall@4"] == pytest.approx(1.0)
    assert m["hit@4"] == 1.0
    standard = (1 / np.log2(3) + 1 / np.log2(5)) / (1 + 1 / np.log2(3))
    assert m["ndcg@4"] == pytest.approx(standard)  # 0.6509
    assert m["aws_ndcg@4"] == pytest.approx((1 + 1 / np.log2(4)) / 2)  # 0.75
    assert m["coverage@4"] == pytest.approx(4 / 40)


def test_aws_ndcg_sorts_the_whole_list_then_cuts():
    hits_at = {3, 20}
    recs = [i + 100 if i + 1 not in hits_at else i + 1 for i in range(25)]
    recs, holdout = _one_user(recs, held=[3, 20], n_items=200)
    m = score(recs, holdout, [10, 25])
    assert m["aws_ndcg@10"] == pytest.approx((1 / np.log2(3)) / 2)  # two hits on top at K=10
    assert m["ndcg@10"] == pytest.approx(0.5 / (1 + 1 / np.log2(3)))
    only_late, holdout = _one_user(
        [i + 100 if i != 19 else 3 for i in range(25)], held=[3], n_items=200
    )
    m = score(only_late, holdout, [10])
    assert m["aws_ndcg@10"] == 0.0
    assert m["aws_mrr"] == pytest.approx(1 / 20)  # still counted over the whole list
    assert m["mrr@10"] == 0.0


def test_exclude_seen_keeps_order_and_refills_like_the_notebook():
    recs, holdout = _one_user([5, 6, 7, 8, 9], held=[9], train_items=[6, 8])
    np.testing.assert_array_equal(exclude_seen(recs, holdout, 4), [[5, 7, 9, 6]])


def test_matches_the_notebook_loop_on_synthetic_data():
    from training.datasets import synthetic_interactions
    from training.split import temporal_holdout

    frame = synthetic_interactions(n_users=120, n_items=90, n_interactions=4000, seed=3)
    frame = frame.rename(
        columns={"user_id": "USER_ID", "item_id": "ITEM_ID", "timestamp": "TIMESTAMP"}
    )
    held_mask = temporal_holdout(frame, 0.1)
    train, held = frame[~held_mask], frame[held_mask]
    users = {u: i for i, u in enumerate(sorted(frame.USER_ID.unique()))}
    items = {u: i for i, u in enumerate(sorted(frame.ITEM_ID.unique()))}
    holdout = Holdout(
        len(users),
        len(items),
        held.USER_ID.map(users).to_numpy(),
        held.ITEM_ID.map(items).to_numpy(),
        train.USER_ID.map(users).to_numpy(),
        train.ITEM_ID.map(items).to_numpy(),
    )
    ranking = popularity_ranking(holdout, 100)
    inverse = np.array(sorted(items, key=items.get), dtype=object)
    for seen_removed in (False, True):
        ours_recs = broadcast(ranking, holdout.n_users)
        ours_recs = exclude_seen(ours_recs, holdout, 25) if seen_removed else ours_recs[:, :25]
        ours = score(ours_recs, holdout, [5, 10, 25])
        theirs = notebook_evaluation(train, held, inverse[ranking], seen_removed)
        for metric, value in theirs.items():
            assert ours[metric] == pytest.approx(value, abs=1e-12), metric


def test_knn_output_is_ranked_by_score_not_by_file_order():
    line = {"predicted_label": 0.0, "distances": [0.1, 0.9, 0.5], "labels": [4.0, 7.0, 2.0]}
    np.testing.assert_array_equal(read_knn_transform_output(json.dumps(line), 3), [[7, 2, 4]])


def test_personalize_batch_output_maps_ids_and_counts_unknown_items():
    lines = "\n".join(
        json.dumps(row)
        for row in [
            {
                "input": {"userId": "b"},
                "output": {"recommendedItems": ["x", "new", "y"]},
                "error": None,
            },
            {"input": {"userId": "a"}, "output": {"recommendedItems": ["y"]}, "error": None},
        ]
    )
    recs, unknown = read_personalize_batch_output(lines, {"a": 0, "b": 1}, {"x": 0, "y": 1}, 3)
    np.testing.assert_array_equal(recs, [[1, -1, -1], [0, 1, -1]])
    assert unknown == 1


def test_report_has_a_chart_per_metric(tmp_path):
    results = {
        "popularity": {"aws_mrr": 0.1, "precision@5": 0.2},
        "fm-knn": {"aws_mrr": 0.3, "precision@5": 0.1},
    }
    write_report(results, [5], tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text()) == results
    page = (tmp_path / "report.html").read_text()
    assert "<h3>aws_mrr</h3>" in page
    assert 'class="bar base"' in page
    assert page.count('class="row"') >= 4


def test_pair_set_dense_and_sorted_keys_agree(monkeypatch):
    from training.evaluate import PairSet

    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 50, 400), rng.integers(0, 70, 400)
    query_users, query_items = rng.integers(0, 50, 1000), rng.integers(-1, 70, 1000)
    dense = PairSet(50, 70, users, items).contains(query_users, query_items)
    monkeypatch.setattr(PairSet, "DENSE_LIMIT", 0)
    sparse = PairSet(50, 70, users, items)
    assert sparse.dense is None
    np.testing.assert_array_equal(sparse.contains(query_users, query_items), dense)
    assert not dense[query_items < 0].any()
