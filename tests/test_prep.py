import json

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import vstack as sp_vstack

from bench.datasets import load_movielens, synthetic_interactions
from bench.notebook_reference import load_dataset
from tests.prep_options import prep_options_with
from training import recordio
from training.features import implicit_target, one_hot, regression_target
from training.interactions import Dropped, deduplicate, filter_long_tail, index_ids
from training.prep import main
from training.split import leave_last_out, temporal_holdout

COLUMNS = {
    "USER_ID": "user_id",
    "ITEM_ID": "item_id",
    "TIMESTAMP": "timestamp",
    "EVENT_VALUE": "rating",
}


DEFAULTS = prep_options_with()


def _run(tmp_path, input_path, **options):
    (tmp_path / "prep.json").write_text(json.dumps(prep_options_with(**options)))
    out = tmp_path / "out"
    code = main(
        ["--input", str(input_path), "--output", str(out), "--options", str(tmp_path / "prep.json")]
    )
    return code, out


def test_end_to_end_on_synthetic_csv(tmp_path):
    frame = synthetic_interactions(seed=1)
    frame.to_csv(tmp_path / "interactions.csv", index=False)
    code, out = _run(
        tmp_path,
        tmp_path / "interactions.csv",
        columns=COLUMNS,
        min_user_interactions=3,
        min_item_interactions=3,
        shard_records=20_000,
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    rows = manifest["rows"]
    assert rows["train"] + rows["holdout"] == rows["clean"]
    assert manifest["input"]["rows_read"] == 20_000
    assert rows["clean"] + sum(manifest["dropped"].values()) == 20_000  # nothing unaccounted
    assert manifest["fm"]["feature_dim"] == manifest["users"] + manifest["items"] + 1
    train, labels = recordio.read_sparse(
        b"".join((out / p).read_bytes() for p in manifest["fm"]["shards"]["train"])
    )
    assert train.shape == (manifest["fm"]["train_records"], manifest["fm"]["feature_dim"])
    assert set(np.unique(labels)) == {0.0, 1.0}
    assert len(manifest["fm"]["shards"]["train"]) == -(-manifest["fm"]["train_records"] // 20_000)
    personalize = pd.read_csv(out / "personalize" / "interactions.csv")
    assert list(personalize.columns) == ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_VALUE"]
    assert len(personalize) == rows["train"]
    schema = json.loads((out / "personalize" / "interactions.schema.json").read_text())
    assert [f["name"] for f in schema["fields"]] == list(personalize.columns)
    assert len(pd.read_csv(out / "evaluation" / "holdout.csv")) == rows["holdout"]


def test_malformed_lines_missing_ids_and_bad_timestamps_are_counted(tmp_path):
    body = "user_id,item_id,timestamp,rating\n" + "\n".join(
        [f"u{u},i{i},{1000 + u * 10 + i},4" for u in range(6) for i in range(6)]
        + ["u1,i1,5,5,extra,fields", ",i2,1200,3", "u2,i3,yesterday,2", "u3,i4,1300,great"]
    )
    (tmp_path / "i.csv").write_text(body + "\n")
    code, out = _run(
        tmp_path,
        tmp_path / "i.csv",
        columns=COLUMNS,
        min_user_interactions=1,
        min_item_interactions=1,
        target="regression",
    )
    assert code == 0
    dropped = json.loads((out / "manifest.json").read_text())["dropped"]
    assert dropped == {
        "malformed line": 1,
        "missing USER_ID": 1,
        "unparseable TIMESTAMP": 1,
        "non-numeric EVENT_VALUE": 1,
    }


def test_amazon_reviews_style_tsv_with_dates(tmp_path):
    rows = [
        "customer_id\tproduct_id\tproduct_title\tstar_rating\treview_date",
        *[
            f'c{c}\tp{p}\tTitle "{p}", with quotes\t{1 + (c + p) % 5}\t2015-0{1 + p % 9}-1{c % 10}'
            for c in range(8)
            for p in range(7)
        ],
    ]
    (tmp_path / "reviews.tsv").write_text("\n".join(rows) + "\n")
    columns = {
        "USER_ID": "customer_id",
        "ITEM_ID": "product_id",
        "TIMESTAMP": "review_date",
        "EVENT_VALUE": "star_rating",
    }
    code, out = _run(
        tmp_path,
        tmp_path,
        format="tsv",
        columns=columns,
        timestamp_unit="date",
        min_user_interactions=5,
        min_item_interactions=5,
        target="binary",
        split="leave_last_out",
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == {"clean": 56, "train": 48, "holdout": 8}
    held = pd.read_csv(out / "evaluation" / "holdout.csv")
    assert held["TIMESTAMP"].min() >= pd.Timestamp("2015-01-10", tz="UTC").timestamp()


def test_parquet_prefix_of_many_files(tmp_path):
    frame = synthetic_interactions(seed=2, n_interactions=3000)
    folder = tmp_path / "raw"
    folder.mkdir()
    frame.iloc[:1500].to_parquet(folder / "part-0.parquet")
    frame.iloc[1500:].to_parquet(folder / "part-1.parquet")
    code, out = _run(
        tmp_path,
        folder,
        format="parquet",
        columns=COLUMNS,
        min_user_interactions=1,
        min_item_interactions=1,
    )
    assert code == 0
    assert len(json.loads((out / "manifest.json").read_text())["input"]["files"]) == 2


def test_bad_options_exit_with_a_message(tmp_path, capsys):
    (tmp_path / "i.csv").write_text("a,b\n1,2\n")
    code, _ = _run(tmp_path, tmp_path / "i.csv", target="ranking")
    assert code == 2
    assert "target='ranking'; allowed: regression, binary, implicit" in capsys.readouterr().err
    code, _ = _run(tmp_path, tmp_path / "i.csv", columns=COLUMNS)
    assert code == 2
    assert "not in the file" in capsys.readouterr().err


def test_missing_or_unknown_options_fail_before_reading_data(tmp_path, capsys):
    (tmp_path / "i.csv").write_text("user_id,item_id,timestamp\n1,2,3\n")
    partial = {k: v for k, v in DEFAULTS.items() if k != "seed"}
    (tmp_path / "prep.json").write_text(json.dumps({**partial, "negative_ratio": 3}))
    out = tmp_path / "out"
    args = ["--input", str(tmp_path / "i.csv"), "--output", str(out)]
    assert main([*args, "--options", str(tmp_path / "prep.json")]) == 2
    err = capsys.readouterr().err
    assert "prep options: unknown ['negative_ratio'], missing ['seed']" in err
    assert "recops.contracts.prep_options" in err
    assert main([*args, "--options", str(tmp_path / "absent.json")]) == 2
    assert "no options file at" in capsys.readouterr().err
    metadata = {"path": "users.csv", "id_column": "user_id", "format": "csv", "categorical": []}
    (tmp_path / "prep.json").write_text(json.dumps({**DEFAULTS, "users": metadata}))
    assert main([*args, "--options", str(tmp_path / "prep.json")]) == 2
    assert "users: unknown none, missing ['numerical']" in capsys.readouterr().err
    assert not out.exists()


def test_one_hot_equals_the_notebook_lil_matrix():
    frame = synthetic_interactions(seed=4, n_interactions=500)
    indexed = index_ids(frame.rename(columns={"user_id": "USER_ID", "item_id": "ITEM_ID"}))
    df = indexed.frame
    ours = one_hot(
        regression_target(df["user"].to_numpy(), df["item"].to_numpy(), df["rating"].to_numpy()),
        indexed.n_users,
        indexed.n_items,
    )
    theirs, labels = load_dataset(df, indexed.n_users, indexed.n_items)
    assert (ours != theirs.tocsr()).nnz == 0
    np.testing.assert_array_equal(labels, df["rating"].to_numpy(np.float32))


def test_implicit_negatives_are_never_observed_pairs():
    user = np.repeat(np.arange(50), 8)
    item = np.tile(np.arange(8), 50)  # every user saw items 0..7 of 10
    examples = implicit_target(user, item, 10, 4, seed=0)
    negatives = examples.label == 0
    assert (examples.item[negatives] >= 8).all()
    assert negatives.sum() + examples.negatives_dropped == 4 * len(user)


def test_filter_until_stable_reaches_a_fixed_point_with_contiguous_indices():
    # pass 1 drops c (1 interaction) and item q; that leaves b with one, dropped in pass 2
    frame = pd.DataFrame({"USER_ID": list("aabbddc"), "ITEM_ID": list("xyxqxyy")})
    once = filter_long_tail(index_ids(frame), 2, 2, Dropped())
    stable = filter_long_tail(index_ids(frame), 2, 2, Dropped(), until_stable=True)
    assert len(stable.frame) < len(once.frame)
    assert (stable.frame.groupby("USER_ID").size() >= 2).all()
    assert (stable.frame.groupby("ITEM_ID").size() >= 2).all()
    assert list(stable.user_ids) == ["a", "d"]
    assert list(stable.item_ids) == ["x", "y"]
    assert sorted(stable.frame["user"].unique()) == [0, 1]
    mapped = stable.user_ids[stable.frame["user"]]
    assert (mapped == stable.frame["USER_ID"].to_numpy()).all()


def test_duplicates_are_counted_and_dropped_once():
    frame = pd.DataFrame({"USER_ID": list("aab"), "ITEM_ID": list("xxy"), "TIMESTAMP": [1, 1, 2]})
    dropped = Dropped()
    indexed = deduplicate(index_ids(frame), dropped)
    assert len(indexed.frame) == 2
    assert dropped.as_dict() == {"duplicate row": 1}


def test_leave_last_out_picks_the_latest_with_input_order_ties():
    frame = pd.DataFrame({"USER_ID": ["a", "a", "a", "b"], "TIMESTAMP": [5, 9, 9, 1]})
    np.testing.assert_array_equal(leave_last_out(frame), [False, False, True, False])


@pytest.mark.slow
@pytest.mark.network
def test_movielens_100k_holdout_is_exactly_each_users_last_tenth():
    frame = load_movielens("ml-100k").rename(
        columns={"user_id": "USER_ID", "item_id": "ITEM_ID", "timestamp": "TIMESTAMP"}
    )
    mask = temporal_holdout(frame, 0.1)
    expected = frame.groupby("USER_ID").TIMESTAMP.rank(pct=True, method="first") > 0.9
    np.testing.assert_array_equal(mask, expected.to_numpy())
    sizes = frame.groupby("USER_ID").size()
    held = pd.Series(mask).groupby(frame["USER_ID"]).sum()
    assert (held == sizes - np.floor(sizes * 0.9 + 1e-9).astype(int)).all()
    last_train = frame[~mask].groupby("USER_ID").TIMESTAMP.max()
    first_held = frame[mask].groupby("USER_ID").TIMESTAMP.min()
    assert (first_held >= last_train[first_held.index]).all()


def test_fm_shards_hold_whole_positives_and_test_negatives_avoid_every_seen_pair(tmp_path):
    frame = synthetic_interactions(n_users=80, n_items=60, n_interactions=4000, seed=6)
    frame.to_csv(tmp_path / "interactions.csv", index=False)
    code, out = _run(
        tmp_path,
        tmp_path / "interactions.csv",
        columns=COLUMNS,
        min_user_interactions=1,
        min_item_interactions=1,
        negatives_per_positive=3,
        days_since_first=False,
        shard_records=1000,
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    n_users = manifest["users"]
    seen = {}
    for channel in ("train", "test"):
        shards = [recordio.read_sparse(out / p) for p in manifest["fm"]["shards"][channel]]
        assert len(shards) > 1
        for matrix, labels in shards:
            assert matrix.shape[0] <= 1000
            assert labels[0] == 1  # a shard starts with a positive, its negatives follow it
            assert (np.diff(np.flatnonzero(np.r_[labels, 1] == 1)) <= 4).all()
        matrix = sp_vstack([m for m, _ in shards])
        labels = np.concatenate([y for _, y in shards])
        user, item = matrix.indices[0::2], matrix.indices[1::2] - n_users
        seen[channel] = (
            set(zip(user[labels == 1], item[labels == 1], strict=True)),
            set(zip(user[labels == 0], item[labels == 0], strict=True)),
        )
    train_positives, train_negatives = seen["train"]
    test_positives, test_negatives = seen["test"]
    assert not train_negatives & train_positives
    assert not test_negatives & (train_positives | test_positives)
