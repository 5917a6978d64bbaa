"""Benchmarks: `python -m bench.run_all [--only NAME] [--dataset ml-1m]` (or `make bench`).

Each benchmark runs the project's code and the reference notebooks' method on the same data in
the same process, checks that they produce the same result, and prints the speed ratio.
Results are also written to bench/out/results.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bench import demo, recordio_reference
from bench import notebook_reference as notebook
from bench.datasets import INTER_COLUMNS, movielens_path, read_inter, synthetic
from bench.job import run_job
from training import recordio
from training.evaluate import Holdout, broadcast, exclude_seen, popularity_ranking, score
from training.features import one_hot, regression_target
from training.interactions import (
    Dropped,
    deduplicate,
    drop_missing_ids,
    filter_long_tail,
    index_ids,
    read_interactions,
)
from training.split import temporal_holdout

OUT = Path(__file__).resolve().parent / "out"
# Ours is fast enough to time as the median of 3 runs; the reference methods run once.
OURS_REPEAT = 3
COLUMNS = {
    "USER_ID": INTER_COLUMNS["user_id"],
    "ITEM_ID": INTER_COLUMNS["item_id"],
    "TIMESTAMP": INTER_COLUMNS["timestamp"],
    "EVENT_VALUE": INTER_COLUMNS["event_value"],
}
PUBLISHED = {
    "popularity": {
        "aws_mrr": 0.0644,
        "precision@5": 0.0198,
        "precision@10": 0.0201,
        "precision@25": 0.0217,
        "aws_ndcg@5": 0.0438,
        "aws_ndcg@10": 0.0655,
        "aws_ndcg@25": 0.1222,
    },
    "popularity, seen removed": {
        "aws_mrr": 0.1476,
        "precision@5": 0.0632,
        "precision@10": 0.0560,
        "precision@25": 0.0446,
        "aws_ndcg@5": 0.1051,
        "aws_ndcg@10": 0.1409,
        "aws_ndcg@25": 0.2101,
    },
}


def timed(function: Callable, *args, repeat: int = 1, **kwargs):
    """The result and the median wall time of `repeat` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        times.append(time.perf_counter() - started)
    return result, float(np.median(times))


def _rows(path: Path, limit: int | None) -> Path:
    """The dataset file, or its first `limit` rows in a temporary copy (quick mode)."""
    if limit is None:
        return path
    lines = path.read_bytes().splitlines(keepends=True)[: limit + 1]
    copy = Path(tempfile.mkdtemp()) / path.name
    copy.write_bytes(b"".join(lines))
    return copy


# ---------------------------------------------------------------------------------------------


def ours_prep(path: Path) -> bytes:
    """The prep job's steps: read, de-duplicate, filter, index, label, one-hot, encode."""
    dropped = Dropped()
    frame = read_interactions([path], "tsv", COLUMNS, "s", dropped)
    indexed = deduplicate(drop_missing_ids(index_ids(frame), dropped), dropped)
    indexed = filter_long_tail(indexed, 1, 1, dropped)
    df = indexed.frame
    examples = regression_target(
        df["user"].to_numpy(), df["item"].to_numpy(), df["EVENT_VALUE"].to_numpy()
    )
    return recordio.encode_sparse(
        one_hot(examples, indexed.n_users, indexed.n_items), examples.label
    )


def notebook_prep(path: Path) -> bytes:
    """Notebook 004: read, index by merge, iterrows + lil_matrix, the SDK writer."""
    df = pd.read_csv(
        path,
        sep="\t",
        quoting=csv.QUOTE_NONE,
        dtype={COLUMNS["USER_ID"]: str, COLUMNS["ITEM_ID"]: str},
    )
    df = df.rename(
        columns={
            COLUMNS["USER_ID"]: "customer_id",
            COLUMNS["ITEM_ID"]: "product_id",
            COLUMNS["EVENT_VALUE"]: "rating",
        }
    )
    customers = np.sort(df["customer_id"].unique())
    products = np.sort(df["product_id"].unique())
    customer_index = pd.DataFrame({"customer_id": customers, "user": np.arange(len(customers))})
    product_index = pd.DataFrame({"product_id": products, "item": np.arange(len(products))})
    df["_order"] = np.arange(len(df))
    df = df.merge(customer_index).merge(product_index)
    df = df.sort_values("_order")  # keep file order, so both sides build the same rows
    X, Y = notebook.load_dataset(df, len(customers), len(products))  # noqa: N806
    return notebook.sdk_write_sparse(X.tocsr(), Y)


def bench_prep(path: Path) -> dict:
    ours, ours_s = timed(ours_prep, path, repeat=OURS_REPEAT)
    theirs, theirs_s = timed(notebook_prep, path)
    rows = len(recordio.payload_spans(ours)[0])
    return {
        "rows": rows,
        "ours_s": ours_s,
        "notebook_s": theirs_s,
        "ratio": theirs_s / ours_s,
        "same_matrices": ours == theirs,
        "target": 50,
    }


def bench_recordio(path: Path) -> dict:
    frame = load_movielens_from(path)
    indexed = index_ids(frame)
    df = indexed.frame
    examples = regression_target(
        df["user"].to_numpy(), df["item"].to_numpy(), df["rating"].to_numpy()
    )
    matrix = one_hot(examples, indexed.n_users, indexed.n_items)
    ours, ours_s = timed(recordio.encode_sparse, matrix, examples.label, repeat=OURS_REPEAT)
    theirs, theirs_s = timed(notebook.sdk_write_sparse, matrix, examples.label)
    return {
        "rows": matrix.shape[0],
        "ours_s": ours_s,
        "sdk_s": theirs_s,
        "ratio": theirs_s / ours_s,
        "byte_identical": ours == theirs,
        "megabytes": len(ours) / 1e6,
        "target": 30,
    }


def load_movielens_from(path: Path) -> pd.DataFrame:
    frame = read_inter(path)
    return frame.rename(
        columns={"user_id": "USER_ID", "item_id": "ITEM_ID", "timestamp": "TIMESTAMP"}
    )


def _holdout(frame: pd.DataFrame) -> tuple[Holdout, pd.DataFrame, pd.DataFrame, np.ndarray]:
    mask = temporal_holdout(frame, 0.1)
    train, held = frame[~mask], frame[mask]
    users = pd.Index(np.sort(frame.USER_ID.unique()))
    items = pd.Index(np.sort(frame.ITEM_ID.unique()))
    holdout = Holdout(
        len(users),
        len(items),
        users.get_indexer(held.USER_ID),
        items.get_indexer(held.ITEM_ID),
        users.get_indexer(train.USER_ID),
        items.get_indexer(train.ITEM_ID),
    )
    return holdout, train, held, items.to_numpy()


def ours_evaluation(holdout: Holdout) -> dict:
    candidates = popularity_ranking(holdout, 100)
    recs = broadcast(candidates, holdout.n_users)
    return {
        "popularity": score(recs[:, :25], holdout, [5, 10, 25]),
        "popularity, seen removed": score(exclude_seen(recs, holdout, 25), holdout, [5, 10, 25]),
    }


def bench_evaluation(path: Path) -> dict:
    frame = load_movielens_from(path)
    holdout, train, held, item_ids = _holdout(frame)
    ours, ours_s = timed(ours_evaluation, holdout, repeat=OURS_REPEAT)
    topk = item_ids[popularity_ranking(holdout, 100)]

    def notebook_both():
        return {
            "popularity": notebook.notebook_evaluation(train, held, topk, False),
            "popularity, seen removed": notebook.notebook_evaluation(train, held, topk, True),
        }

    theirs, theirs_s = timed(notebook_both)
    identical = all(
        abs(ours[name][metric] - value) < 1e-12
        for name, values in theirs.items()
        for metric, value in values.items()
    )
    published = {
        name: {
            metric: {"ours": round(ours[name][metric], 4), "published": value}
            for metric, value in PUBLISHED[name].items()
        }
        for name in PUBLISHED
    }
    return {
        "users": len(holdout.eval_users),
        "ours_s": ours_s,
        "notebook_s": theirs_s,
        "ratio": theirs_s / ours_s,
        "identical_numbers": identical,
        "target": 100,
        "published": published,
    }


def bench_read_sparse(path: Path) -> dict:
    """RecordIO back to CSR + labels: the vectorised reader vs the per-record one it replaced.

    On the first shard of ML-1M's FM training channel as the prep job writes it at the demo's
    settings (implicit target, 4 negatives per positive, days_since_first)."""
    with tempfile.TemporaryDirectory() as out:
        manifest = demo.prepare(path, Path(out))
        data = (Path(out) / manifest["fm"]["shards"]["train"][0]).read_bytes()
    ours, ours_s = timed(recordio.read_sparse, data, repeat=OURS_REPEAT)
    theirs, theirs_s = timed(recordio_reference.read_sparse, data)
    (matrix, labels), (their_matrix, their_labels) = ours, theirs
    same = (
        matrix.shape == their_matrix.shape
        and matrix.dtype == their_matrix.dtype
        and np.array_equal(matrix.indptr, their_matrix.indptr)
        and np.array_equal(matrix.indices, their_matrix.indices)
        and np.array_equal(matrix.data, their_matrix.data)
        and labels.dtype == their_labels.dtype
        and np.array_equal(labels, their_labels)
    )
    records = matrix.shape[0]
    return {
        "records": records,
        "megabytes": round(len(data) / 1e6, 1),
        "ours_s": ours_s,
        "reference_s": theirs_s,
        "ours_us_per_record": 1e6 * ours_s / records,
        "reference_us_per_record": 1e6 * theirs_s / records,
        "ratio": theirs_s / ours_s,
        "same_result": bool(same),
        "target": 30,
    }


def _prep_job(path: Path, **overrides) -> dict:
    """The prep job (`python -m training.prep`) on `path` at the demo's options (and these
    overrides), in its own process: its wall time and own peak memory (bench/job.py)."""
    with tempfile.TemporaryDirectory() as out:
        options = Path(out) / "prep.json"
        options.write_text(json.dumps({**demo.prep_options(), **overrides}))
        args = ["--input", str(path), "--output", str(Path(out) / "prepared")]
        job = run_job("training.prep:main", [*args, "--options", str(options)])
        manifest = json.loads((Path(out) / "prepared" / "manifest.json").read_text())
    return {
        "interactions": manifest["input"]["rows_read"],
        "fm_records": manifest["fm"]["train_records"] + manifest["fm"]["test_records"],
        "seconds": job["seconds"],
        "cpu_s": job["cpu_s"],
        "peak_mb": job["peak_mb"],
    }


def bench_memory(path: Path) -> dict:
    """The whole prep job with every interaction kept (long-tail filters at 1; implicit target,
    4 negatives per positive) in its own process."""
    return {**_prep_job(path, min_user_interactions=1, min_item_interactions=1), "limit_mb": 2048}


def bench_prep_job(path: Path) -> dict:
    """The whole prep job at the demo's settings, in its own process."""
    return {**_prep_job(path), "target_s": 3}


SYNTHETIC_10M = {"n_users": 70_000, "n_items": 10_000, "n_interactions": 10_000_000}
SYNTHETIC_ROWS = None  # --rows: that many synthetic interactions instead (a quick check)


def bench_prep_10m(path: Path) -> dict:
    """The prep job at the demo's settings on ten million synthetic interactions (MovieLens-10M
    sized: 70,000 users, 10,000 items), generated here and written as a .inter file first."""
    rows = SYNTHETIC_ROWS or SYNTHETIC_10M["n_interactions"]
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        generated = synthetic(**{**SYNTHETIC_10M, "n_interactions": rows}, seed=0)
        interactions = Path(scratch) / "synthetic.inter"
        generated.write_tsv(interactions)
        generator_s = time.perf_counter() - started
        del generated
        job = _prep_job(interactions)
    return {**job, "generator_s": round(generator_s, 1), "target_s": 60, "limit_mb": 3072}


def bench_fm_training(path: Path) -> dict:
    """The local FM trainer as a training job (channels read from files, 30 epochs, test
    metrics, model.tar.gz) on ML-1M's FM channels at the demo's settings, in its own process."""
    with tempfile.TemporaryDirectory() as out:
        manifest = demo.prepare(path, Path(out) / "prepared")
        hyperparameters = Path(out) / "hyperparameters.json"
        hp = demo.fm_hyperparameters(manifest)
        hyperparameters.write_text(json.dumps(hp))
        channels = Path(out) / "prepared" / "fm"
        args = ["--train", str(channels / "train"), "--test", str(channels / "test")]
        args += ["--hyperparameters", str(hyperparameters), "--model-dir", str(Path(out) / "m")]
        job = run_job("localaws.fm_trainer:main", args)
    lines = job["stdout_tail"].splitlines()
    return {
        "train_records": manifest["fm"]["train_records"],
        "test_records": manifest["fm"]["test_records"],
        "hyperparameters": hp,
        "seconds": job["seconds"],
        "cpu_s": job["cpu_s"],
        "peak_mb": job["peak_mb"],
        "last_epoch": next((line for line in reversed(lines) if "epoch=" in line), None),
        "test_scores": [line for line in lines if line.startswith("#test_score")],
        "target_s": 180,
        "limit_mb": 1536,
    }


BENCHMARKS = {
    "prep": bench_prep,
    "recordio": bench_recordio,
    "evaluation": bench_evaluation,
    "memory": bench_memory,
    "prep_job": bench_prep_job,
    "prep_10m": bench_prep_10m,
    "read_sparse": bench_read_sparse,
    "fm_training": bench_fm_training,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument("--dataset", default="ml-1m", choices=["ml-100k", "ml-1m"])
    parser.add_argument("--rows", type=int, help="use only the first N rows (a quick check)")
    args = parser.parse_args(argv)
    global SYNTHETIC_ROWS
    SYNTHETIC_ROWS = args.rows
    path = _rows(movielens_path(args.dataset), args.rows)
    results = {}
    for name in args.only or BENCHMARKS:
        print(
            f"== {name} on {args.dataset}{f' (first {args.rows} rows)' if args.rows else ''}",
            flush=True,
        )
        results[name] = BENCHMARKS[name](path)
        print(json.dumps(results[name], indent=2, default=str), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(
        json.dumps({"dataset": args.dataset, "rows": args.rows, **results}, indent=2, default=str)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
