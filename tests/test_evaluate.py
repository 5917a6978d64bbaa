import json

import numpy as np
import pandas as pd
import pytest

from bench.notebook_reference import notebook_evaluation
from training.evaluate import (
    Holdout,
    RunContext,
    Source,
    broadcast,
    exclude_seen,
    metrics_document,
    popularity_ranking,
    ranked_by,
    read_knn_transform_output,
    read_personalize_batch_output,
    score,
    write_report,
)
from training.evaluate import main as evaluate_main


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
    from bench.datasets import synthetic_interactions
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
    sources = {"fm-knn": Source("fm-knn", "fm-knn")}
    write_report(metrics_document(results, [5], sources, RunContext()), tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["results"] == results
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


# --- the job: metrics.json v2, the run context, the report ----------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """prep's outputs on synthetic data, the Personalize files and batch input apart from them
    as the workflow lays them out, and the held-out items of each user (original ids)."""
    from bench.datasets import synthetic_interactions
    from tests.prep_options import prep_options_with
    from training import prep

    folder = tmp_path_factory.mktemp("evaluate")
    synthetic_interactions(80, 60, 4_000, seed=8).to_csv(folder / "i.csv", index=False)
    columns = {"USER_ID": "user_id", "ITEM_ID": "item_id", "TIMESTAMP": "timestamp"}
    options = prep_options_with(columns=columns, min_user_interactions=2, min_item_interactions=2)
    (folder / "prep.json").write_text(json.dumps(options))
    args = ["--input", str(folder / "i.csv"), "--output", str(folder / "prepared")]
    args += ["--personalize-output", str(folder / "import")]
    args += ["--batch-input-output", str(folder / "batch-input")]
    assert prep.main([*args, "--options", str(folder / "prep.json")]) == 0
    held = pd.read_csv(folder / "prepared" / "evaluation" / "holdout.csv", dtype=str)
    return folder, held.groupby("USER_ID")["ITEM_ID"].apply(list).to_dict()


def _batch_output(folder, key, recommend):
    """A Personalize batch job's output for prep's batch input: users.json.out in <key>/."""
    out = folder / "batch-output" / key
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for line in (folder / "batch-input" / "users.json").read_text().splitlines():
        user = json.loads(line)["userId"]
        row = {"input": {"userId": user}, "output": {"recommendedItems": recommend(user)}}
        lines.append(json.dumps({**row, "error": None}))
    (out / "users.json.out").write_text("\n".join(lines) + "\n")
    return out


def _evaluate(folder, *extra):
    report = folder / "report"
    args = ["--prepared", str(folder / "prepared"), "--output", str(report)]
    args += ["--interactions", str(folder / "import" / "interactions.csv")]
    assert evaluate_main([*args, "--k", "5", "--k", "10", *extra]) == 0
    return json.loads((report / "metrics.json").read_text()), (report / "report.html").read_text()


RUN_CONTEXT = {
    "run": "0123456789ab",
    "batchJobs": [
        {"batchJob": "oracle", "solution": "user-personalization", "recipe": "aws-user-pers"},
        {"batchJob": "worst", "solution": "popularity", "recipe": "aws-popularity-count"},
    ],
    "notScored": [{"solution": "similar-items", "recipe": "aws-similar-items", "why": "no K"}],
    "failed": [{"solution": "sims", "error": "SolutionVersionFailed", "cause": "too few rows"}],
    "solutionMetrics": {"user-personalization": {"coverage": 0.4}},
}


def _sources(folder, held):
    items = pd.read_csv(folder / "prepared" / "maps" / "items.csv", dtype=str)["ITEM_ID"]
    oracle = _batch_output(folder, "oracle", lambda user: held.get(user, [])[:10])
    worst = _batch_output(folder, "worst", lambda user: list(items[-10:]))
    return ["--personalize-output", str(oracle), "--personalize-output", str(worst)]


def test_metrics_v2_ranks_every_source_against_the_baseline_of_the_same_seen_handling(
    prepared, capsys
):
    folder, held = prepared
    (folder / "run.json").write_text(json.dumps(RUN_CONTEXT))
    document, page = _evaluate(
        folder, *_sources(folder, held), "--run-context", str(folder / "run.json")
    )
    assert document["version"] == 2
    assert document["run"] == "0123456789ab"
    assert document["status"] == "PARTIAL"
    assert (document["kValues"], document["rankedBy"]) == ([5, 10], "ndcg@10")
    assert document["baseline"] == "popularity, seen removed"
    for key in ("notScored", "failed", "solutionMetrics"):
        assert document[key] == RUN_CONTEXT[key]
    board = document["leaderboard"]
    assert {e["name"] for e in board} == set(document["results"])  # every scored list, once
    assert len(board) == 6  # popularity, two batch jobs; each with and without seen items
    ranked = [e["metrics"]["ndcg@10"] for e in board]
    assert ranked == sorted(ranked, reverse=True)
    by_name = {e["name"]: e for e in board}
    oracle = by_name["personalize (oracle)"]
    assert oracle == {
        "name": "personalize (oracle)",
        "source": "personalize",
        "solution": "user-personalization",
        "recipe": "aws-user-pers",
        "seenRemoved": False,
        "metrics": document["results"]["personalize (oracle)"],
        "beatsBaseline": True,
    }
    assert board[0]["name"].startswith("personalize (oracle)")
    assert by_name["personalize (oracle), seen removed"]["seenRemoved"] is True
    worst = by_name["personalize (worst), seen removed"]
    baseline = by_name["popularity, seen removed"]
    assert worst["metrics"]["ndcg@10"] < baseline["metrics"]["ndcg@10"]
    assert worst["beatsBaseline"] is False
    assert baseline["beatsBaseline"] is False
    assert (baseline["source"], baseline["solution"], baseline["recipe"]) == (
        "popularity",
        None,
        None,
    )
    # the report: leaderboard, not scored, failed, then the charts; the log: the leaderboard
    order = [page.index(h) for h in ("<h2>Leaderboard", "<h2>Not scored", "<h2>Failed", "<h3>")]
    assert order == sorted(order)
    assert "<li><b>similar-items</b> (aws-similar-items): no K</li>" in page
    assert "<li><b>sims</b>: SolutionVersionFailed: too few rows</li>" in page
    assert '<td>1</td><td class="text">personalize (oracle)' in page
    out = capsys.readouterr().out
    assert "PARTIAL, ranked by ndcg@10" in out
    assert out.index("personalize (oracle)") < out.index("personalize (worst), seen removed")
    assert "failed: sims: SolutionVersionFailed: too few rows" in out


def test_without_a_run_context_the_run_is_complete_with_empty_lists(prepared):
    folder, _ = prepared
    knn = folder / "knn"
    knn.mkdir(exist_ok=True)
    users = pd.read_csv(folder / "prepared" / "maps" / "users.csv")
    line = json.dumps({"labels": [0.0, 1.0, 2.0], "distances": [0.3, 0.2, 0.1]})
    (knn / "queries.out").write_text("\n".join([line] * len(users)) + "\n")
    document, _ = _evaluate(folder, "--knn-output", str(knn))
    assert (document["run"], document["status"]) == (None, "COMPLETE")
    assert document["notScored"] == document["failed"] == []
    assert document["solutionMetrics"] == {}
    assert {(e["name"], e["source"]) for e in document["leaderboard"]} >= {
        ("fm-knn", "fm-knn"),
        ("fm-knn, seen removed", "fm-knn"),
    }


def test_the_knn_output_is_published_with_original_ids_best_first(prepared):
    folder, _ = prepared
    knn = folder / "knn"
    knn.mkdir(exist_ok=True)
    users = pd.read_csv(folder / "prepared" / "maps" / "users.csv", dtype={"USER_ID": str})
    items = pd.read_csv(folder / "prepared" / "maps" / "items.csv", dtype={"ITEM_ID": str})
    # neighbours as the transform lists them: smallest inner product first
    line = json.dumps({"labels": [2.0, 0.0, 1.0], "distances": [0.1, 0.2, 0.9]})
    (knn / "queries.out").write_text("\n".join([line] * len(users)) + "\n")
    out = folder / "recommendations"
    _evaluate(folder, "--knn-output", str(knn), "--recommendations-output", str(out))
    lines = (out / "recommendations.jsonl").read_text().splitlines()
    assert len(lines) == len(users)
    first = json.loads(lines[0])
    item_id = items.set_index("index")["ITEM_ID"]
    assert first["input"]["userId"] == users.set_index("index")["USER_ID"][0]
    assert first["output"]["recommendedItems"] == [item_id[1], item_id[0], item_id[2]]
    assert first["output"]["scores"] == [0.9, 0.2, 0.1]
    table = pd.read_csv(out / "recommendations.csv", dtype=str)
    assert list(table.columns) == ["user_id", "rank", "item_id", "score"]
    assert len(table) == 3 * len(users)
    assert table["rank"].head(3).tolist() == ["1", "2", "3"]


def test_a_transform_output_missing_users_is_refused(tmp_path):
    from training.recommendations import write_recommendations

    line = json.dumps({"labels": [0.0], "distances": [1.0]})
    with pytest.raises(ValueError, match="1 lines, the prepared data 2 users"):
        write_recommendations(tmp_path, line, ["u1", "u2"], ["i1"])


def test_a_batch_job_without_output_is_a_failure_not_a_row_of_zeros(prepared):
    folder, _ = prepared
    empty = folder / "batch-output" / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    context = {
        "run": "r",
        "batchJobs": [
            {"batchJob": "empty", "solution": "a", "recipe": "aws-user-personalization-v2"},
            {"batchJob": "lost", "solution": "b", "recipe": "aws-popularity-count"},
        ],
    }
    (folder / "run-missing.json").write_text(json.dumps(context))
    document, _ = _evaluate(
        folder,
        "--personalize-output",
        str(empty),
        "--run-context",
        str(folder / "run-missing.json"),
    )
    assert document["status"] == "PARTIAL"
    assert [(f["solution"], f["error"]) for f in document["failed"]] == [
        ("a", "NoBatchOutput"),
        ("b", "NoBatchOutput"),
    ]
    assert not [e for e in document["leaderboard"] if e["source"] == "personalize"]


def test_ranked_by_ndcg_at_10_or_at_the_largest_k():
    assert ranked_by([5, 10, 25]) == "ndcg@10"
    assert ranked_by([5, 20]) == "ndcg@20"


def test_missing_or_short_knn_output_is_a_failed_row_and_the_rest_still_ranks(prepared):
    folder, _ = prepared
    empty = folder / "knn-empty"
    empty.mkdir(exist_ok=True)
    out = folder / "recommendations-none"
    document, _ = _evaluate(
        folder, "--knn-output", str(empty), "--recommendations-output", str(out)
    )
    assert document["status"] == "PARTIAL"
    [failed] = document["failed"]
    assert failed["solution"] == "fm-knn"
    assert "no KNN batch transform output" in failed["cause"]
    assert "popularity, seen removed" in {row["name"] for row in document["leaderboard"]}
    assert not out.exists()  # nothing published from a transform that did not answer
    short = folder / "knn-short"
    short.mkdir(exist_ok=True)
    line = json.dumps({"labels": [0.0], "distances": [1.0]})
    (short / "users.out").write_text(line + "\n")
    document, _ = _evaluate(folder, "--knn-output", str(short))
    [failed] = document["failed"]
    assert "did not score every user row" in failed["cause"]


# --- the like-for-like rule (training/candidates.py) -----------------------------------------


def _holdout(n_users, n_items, train, held):
    """Holdout from {user: [items]} maps of training and held-out items."""

    def pairs(by_user):
        users = [u for u, items in by_user.items() for _ in items]
        items = [i for its in by_user.values() for i in its]
        return np.asarray(users, np.int64), np.asarray(items, np.int64)

    (tu, ti), (hu, hi) = pairs(train), pairs(held)
    return Holdout(n_users, n_items, hu, hi, tu, ti)


def test_a_top_k_of_seen_items_is_refilled_from_the_deeper_candidates():
    from training.evaluate import evaluate_like_for_like

    # user 0 saw items 0..4, exactly the source's top 5; its held-out item 7 sits at rank 8
    holdout = _holdout(2, 20, {0: [0, 1, 2, 3, 4], 1: [9]}, {0: [7], 1: [8]})
    deep = np.asarray([[0, 1, 2, 3, 4, 5, 6, 7, 10, 11], [8, 0, 1, 2, 3, 4, 5, 6, 10, 11]])
    results, cut = evaluate_like_for_like(holdout, {"deep": deep}, [5])
    assert results["deep"]["hit@5"] == pytest.approx(0.5)  # user 0's top 5: all seen
    removed = results["deep, seen removed"]
    assert removed["hit@5"] == 1.0  # refilled from ranks 6..8, not cut at 5 and then filtered
    assert removed["mrr@5"] == pytest.approx((1 / 3 + 1) / 2)
    assert cut.unfilled_users["deep, seen removed"] == 0


def test_sources_of_different_widths_share_one_candidate_width_and_unfillable_users_count():
    from training.evaluate import evaluate_like_for_like

    # user 0 saw items 0..5; five items in all are not seen by it: 6..9 and nothing else but 10
    holdout = _holdout(2, 12, {0: [0, 1, 2, 3, 4, 5], 1: [11]}, {0: [6], 1: [0]})
    narrow = np.asarray([[0, 1, 2, 3, 4, 5, -1, -1], [0, 1, 2, -1, -1, -1, -1, -1]])
    wide = np.asarray([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])
    results, cut = evaluate_like_for_like(holdout, {"narrow": narrow, "wide": wide}, [3])
    named = {name: Source(name, "fm-knn") for name in ("narrow", "wide")}
    document = metrics_document(results, [3], named, RunContext(), cut)["candidates"]
    assert document["width"] == 11  # the widest list any source supplied
    assert document["sourceWidths"] == {"narrow": 6, "wide": 11}
    assert document["cutTo"] == 3
    assert "item index" in document["tieBreak"]
    # narrow: user 0 has no unseen candidate, user 1 only 3 (enough); wide refills both;
    # popularity got the same 11 candidates, so it refills user 0 too
    assert document["unfilledUsers"] == {
        "popularity, seen removed": 0,
        "narrow, seen removed": 1,
        "wide, seen removed": 0,
    }
    assert results["wide, seen removed"]["hit@3"] == pytest.approx(1.0)


def test_popularity_gets_exactly_the_candidate_width():
    from training.evaluate import evaluate_like_for_like

    # user 0 saw the 4 most popular items; with 4 candidates (the source's width) popularity
    # cannot refill it, as the source cannot
    holdout = _holdout(
        3, 10, {0: [0, 1, 2, 3], 1: [0, 1, 2, 3, 4], 2: [0, 4]}, {0: [4], 1: [5], 2: [3]}
    )
    source = np.tile(np.arange(4), (3, 1))
    _, cut = evaluate_like_for_like(holdout, {"four": source}, [2])
    assert cut.width == 4
    assert cut.unfilled_users["popularity, seen removed"] == 2  # users 0 and 1 saw all four
    assert cut.unfilled_users["four, seen removed"] == 2
    _, alone = evaluate_like_for_like(holdout, {}, [2])
    assert alone.width == 8  # popularity alone: 4 x the largest K, as the AWS notebook's 100


def test_cold_start_users_and_items_are_counted():
    holdout = _holdout(4, 6, {0: [0, 1], 1: [1, 2]}, {0: [3], 1: [0, 5], 2: [1], 3: [5]})
    assert holdout.cold_start.document() == {
        "users": 2,  # users 2 and 3 have no training interaction
        "items": 2,  # items 3 and 5 were never trained on
        "interactions": 3,
        "evalUsers": 4,
        "holdoutItems": 4,
        "holdoutInteractions": 5,
    }


def test_ties_are_broken_by_score_then_item_index_whatever_the_file_order():
    lines = [
        {"labels": [9.0, 3.0, 5.0, 1.0], "distances": [0.5, 0.5, 0.9, 0.5]},
        {"labels": [1.0, 5.0, 3.0, 9.0], "distances": [0.5, 0.9, 0.5, 0.5]},
    ]
    recs = read_knn_transform_output("\n".join(json.dumps(line) for line in lines))
    np.testing.assert_array_equal(recs, [[5, 1, 3, 9], [5, 1, 3, 9]])
    row = {"recommendedItems": ["d", "b", "c", "a"], "scores": [0.2, 0.2, 0.7, 0.2]}
    line = json.dumps({"input": {"userId": "u"}, "output": row, "error": None})
    recs, _ = read_personalize_batch_output(line, {"u": 0}, {"a": 0, "b": 1, "c": 2, "d": 3})
    np.testing.assert_array_equal(recs, [[2, 0, 1, 3]])


def test_sources_are_read_at_their_full_width():
    line = json.dumps({"labels": list(map(float, range(40))), "distances": [1.0] * 40})
    assert read_knn_transform_output(line).shape == (1, 40)
    items = {str(i): i for i in range(30)}
    row = {"input": {"userId": "u"}, "output": {"recommendedItems": list(items)}, "error": None}
    recs, _ = read_personalize_batch_output(json.dumps(row), {"u": 0, "v": 1}, items)
    assert recs.shape == (2, 30)
    assert (recs[1] == -1).all()  # a user without output: an empty list, counted as unfilled


def test_the_same_ranking_scores_the_same_from_any_source(prepared, capsys):
    """A KNN output that lists the popularity ranking (30 neighbours) ties popularity exactly,
    seen items removed: both are cut from the same 30 candidates, not the KNN at the largest K."""
    folder, _ = prepared
    train = pd.read_csv(folder / "import" / "interactions.csv", dtype=str)
    items = pd.read_csv(folder / "prepared" / "maps" / "items.csv", dtype={"ITEM_ID": str})
    index = items.set_index("ITEM_ID")["index"]
    counts = train["ITEM_ID"].map(index).value_counts().reindex(items["index"], fill_value=0)
    ranking = sorted(items["index"], key=lambda i: (-counts[i], i))[:30]
    scores = [float(30 - rank) for rank in range(30)]  # distinct: no tie to break
    line = json.dumps({"labels": [float(i) for i in ranking], "distances": scores})
    users = pd.read_csv(folder / "prepared" / "maps" / "users.csv")
    knn = folder / "knn-popularity"
    knn.mkdir(exist_ok=True)
    (knn / "users.out").write_text("\n".join([line] * len(users)) + "\n")
    document, page = _evaluate(folder, "--knn-output", str(knn))
    results = document["results"]
    assert results["fm-knn, seen removed"] == results["popularity, seen removed"]
    cut = document["candidates"]
    assert (cut["width"], cut["sourceWidths"], cut["cutTo"]) == (30, {"fm-knn": 30}, 10)
    unfilled = cut["unfilledUsers"]
    assert unfilled["fm-knn, seen removed"] == unfilled["popularity, seen removed"]
    cold = document["coldStart"]
    assert cold["evalUsers"] == results["popularity"]["users"]
    assert 0 <= cold["users"] <= cold["evalUsers"]
    assert "<h2>Candidates</h2>" in page
    assert "<h2>Cold start</h2>" in page
    out = capsys.readouterr().out
    for figure in ("ndcg@10=", "precision@10=", "aws_mrr=", "aws_precision@10=", "aws_ndcg@10="):
        assert figure in out
    assert "candidates: 30 for every list (fm-knn 30)" in out
    assert "cold start: " in out
