"""prep's outputs for the workflow (each in its own place), its metadata checks, and missing ids."""

import json

import pandas as pd
import pytest

from bench.datasets import synthetic_interactions
from tests.prep_options import prep_options_with
from training.prep import main

COLUMNS = {"USER_ID": "user_id", "ITEM_ID": "item_id", "TIMESTAMP": "timestamp"}
KEEP_ALL = {"columns": COLUMNS, "min_user_interactions": 1, "min_item_interactions": 1}


def _metadata(path, id_column, categorical=(), numerical=(), fmt="csv"):
    """A users/items entry of the options; `path` is where the workflow finds it in S3."""
    return {
        "path": path,
        "id_column": id_column,
        "format": fmt,
        "categorical": list(categorical),
        "numerical": list(numerical),
    }


def _prep(tmp_path, interactions, *flags, **options):
    (tmp_path / "prep.json").write_text(json.dumps(prep_options_with(**{**KEEP_ALL, **options})))
    out = tmp_path / "prepared"
    args = ["--input", str(interactions), "--output", str(out)]
    return main([*args, "--options", str(tmp_path / "prep.json"), *flags]), out


def _written(tmp_path):
    """Every file under tmp_path that prep could have written (not its inputs)."""
    inputs = {"prep.json", "i.csv", "users.csv", "items.csv", "items.tsv"}
    return sorted(
        str(p.relative_to(tmp_path))
        for p in tmp_path.rglob("*")
        if p.is_file() and p.name not in inputs
    )


@pytest.fixture
def interactions(tmp_path):
    frame = synthetic_interactions(40, 30, 1_500, seed=11)
    frame.to_csv(tmp_path / "i.csv", index=False)
    return tmp_path / "i.csv"


def test_each_output_lands_where_the_workflow_maps_it(tmp_path, interactions):
    pd.DataFrame({"uid": [1, 2, 3], "age": [30, 41, 25]}).to_csv(
        tmp_path / "users.csv", index=False
    )
    folder = tmp_path / "item-files"
    folder.mkdir()
    pd.DataFrame({"iid": [1, 2], "genre": ["a|b", "c"]}).to_csv(folder / "part-0.csv", index=False)
    pd.DataFrame({"iid": [3], "genre": ["d"]}).to_csv(folder / "part-1.csv", index=False)
    flags = [
        *("--personalize-output", str(tmp_path / "import")),
        *("--batch-input-output", str(tmp_path / "batch")),
        *("--users", str(tmp_path / "users.csv"), "--items", str(folder)),
    ]
    code, out = _prep(
        tmp_path,
        interactions,
        *flags,
        users=_metadata("raw/users.csv", "uid", numerical=["age"]),
        items=_metadata("raw/items/", "iid", categorical=["genre"]),
    )
    assert code == 0
    imported = {p.name for p in (tmp_path / "import").iterdir()}
    assert imported == {
        f"{kind}.{suffix}"
        for kind in ("interactions", "users", "items")
        for suffix in ("csv", "schema.json")
    }
    assert not (out / "personalize").exists()
    assert not (out / "batch-input").exists()
    assert {p.name for p in out.iterdir()} == {"fm", "evaluation", "maps", "manifest.json"}
    assert pd.read_csv(tmp_path / "import" / "items.csv")["ITEM_ID"].tolist() == [1, 2, 3]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metadata"]["items"]["rows"] == 3
    assert len(manifest["metadata"]["items"]["files"]) == 2
    # the batch input: one line per user with a held-out interaction, ids as the CSVs write them
    lines = (tmp_path / "batch" / "users.json").read_text().splitlines()
    held = pd.read_csv(out / "evaluation" / "holdout.csv", dtype=str, keep_default_na=False)
    assert [json.loads(line) for line in lines] == [
        {"userId": user} for user in sorted(held["USER_ID"].unique())
    ]
    assert manifest["batch_input"] == {"users": len(lines), "file": "users.json"}


def test_by_default_the_personalize_files_and_batch_input_stay_under_the_output(
    tmp_path, interactions
):
    code, out = _prep(tmp_path, interactions)
    assert code == 0
    assert (out / "personalize" / "interactions.csv").exists()
    assert (out / "batch-input" / "users.json").exists()


BAD_METADATA = [
    (
        _metadata("u.csv", "user"),
        "data.users.id_column: 'user' is not a column of users.csv; its columns are "
        "['uid', 'gender', 'age']; set id_column to the column holding the user ids",
    ),
    (
        _metadata("u.csv", "uid", categorical=["country"]),
        "data.users: columns ['country'] are listed in categorical/numerical but not in "
        "users.csv; its columns are ['uid', 'gender', 'age']",
    ),
    (
        _metadata("u.csv", "uid", numerical=["gender", "age"]),
        "data.users.numerical: column 'gender' of users.csv holds text such as ['F', 'M'] "
        "(3 of 3 rows); a numerical column becomes a float field of the Personalize schema: "
        "move 'gender' to data.users.categorical, or fix its values",
    ),
]


@pytest.mark.parametrize(("users", "message"), BAD_METADATA, ids=["id", "column", "numerical"])
def test_metadata_that_does_not_match_the_config_fails_before_anything_is_written(
    tmp_path, interactions, capsys, users, message
):
    metadata = pd.DataFrame({"uid": ["1", "2", "3"], "gender": ["F", "M", "F"], "age": [3, 4, 5]})
    metadata.to_csv(tmp_path / "users.csv", index=False)
    flags = ["--users", str(tmp_path / "users.csv")]
    flags += ["--personalize-output", str(tmp_path / "import")]
    code, _ = _prep(tmp_path, interactions, *flags, users=users)
    assert code == 2
    assert message in capsys.readouterr().err
    assert _written(tmp_path) == []


def test_metadata_rows_without_an_id_are_counted_and_a_literal_na_is_an_id(tmp_path, interactions):
    (tmp_path / "items.tsv").write_text(
        "iid\tgenre\tprice\n"
        "1\tdrama\t3.5\n"
        "NULL\tcomedy\t1\n"
        "\tcomedy\t1\n"
        "None\tx\t\n"
        "NA\tNA\tNaN\n"
        "2\t\t\n"
        "2\tdrama\t2\n"
    )
    items = _metadata("raw/items.tsv", "iid", ["genre"], ["price"], fmt="tsv")
    code, out = _prep(tmp_path, interactions, "--items", str(tmp_path / "items.tsv"), items=items)
    assert code == 0
    written = (out / "personalize" / "items.csv").read_text().splitlines()
    assert written == ["ITEM_ID,genre,price", "1,drama,3.5", "NA,NA,", "2,drama,2.0"]
    summary = json.loads((out / "manifest.json").read_text())["metadata"]["items"]
    assert summary["rows_read"] == 7
    assert summary["rows"] == 3
    assert summary["dropped"] == {"missing ITEM_ID": 3, "duplicate ITEM_ID": 1}


def test_ids_and_event_types_spelled_as_null_are_dropped_counted_and_never_written(tmp_path):
    frame = synthetic_interactions(30, 20, 900, seed=12).astype({"user_id": str, "item_id": str})
    frame["event"] = "watch"
    frame.loc[0:3, "user_id"] = ["NULL", "NaN", "nan", "None"]
    frame.loc[4:5, "item_id"] = ["NULL", ""]
    frame.loc[6:8, "event"] = ["", "NULL", "None"]
    frame.loc[9:11, "user_id"] = "NA"  # a real id, as is "null"
    frame.loc[12:13, "item_id"] = "null"
    frame.to_csv(tmp_path / "i.csv", index=False)
    columns = {**COLUMNS, "EVENT_TYPE": "event"}
    flags = ["--batch-input-output", str(tmp_path / "batch")]
    code, out = _prep(tmp_path, tmp_path / "i.csv", *flags, columns=columns)
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dropped"] == {
        "missing USER_ID": 4,
        "missing ITEM_ID": 2,
        "missing EVENT_TYPE": 3,
    }
    assert manifest["rows"]["clean"] + sum(manifest["dropped"].values()) == 900
    read = {"dtype": str, "keep_default_na": False}
    written = pd.concat(
        [
            pd.read_csv(out / "personalize" / "interactions.csv", **read),
            pd.read_csv(out / "evaluation" / "holdout.csv", **read),
        ]
    )
    assert len(written) == manifest["rows"]["clean"]
    for column in ("USER_ID", "ITEM_ID"):
        assert not written[column].isin(["", "NULL", "NaN", "nan", "None"]).any()
    assert set(pd.read_csv(out / "personalize" / "interactions.csv", **read)["EVENT_TYPE"]) == {
        "watch"
    }
    assert "NA" in set(written["USER_ID"])
    assert "null" in set(written["ITEM_ID"])
    assert "NA" in pd.read_csv(out / "maps" / "users.csv", **read)["USER_ID"].tolist()


def test_parquet_nulls_and_null_spellings_are_missing_ids(tmp_path):
    frame = synthetic_interactions(30, 20, 600, seed=13).astype({"user_id": object})
    frame["user_id"] = frame["user_id"].astype(str)
    frame.loc[0:1, "user_id"] = [None, "NULL"]
    frame.to_parquet(tmp_path / "i.parquet")
    code, out = _prep(tmp_path, tmp_path / "i.parquet", format="parquet")
    assert code == 0
    assert json.loads((out / "manifest.json").read_text())["dropped"] == {"missing USER_ID": 2}


def test_an_unmapped_timestamp_fails_before_reading_data(tmp_path, capsys):
    columns = {**COLUMNS, "TIMESTAMP": None}
    code, out = _prep(tmp_path, tmp_path / "absent.csv", columns=columns)
    assert code == 2
    assert "columns: TIMESTAMP is not mapped" in capsys.readouterr().err
    assert not out.exists()


def _null_spelling_data(folder):
    """Interactions with ids and event types spelled as null, and the real ids "NA"/"null"; items
    metadata with missing and duplicate ids: what differs most between pandas 2.3 and 3."""
    frame = synthetic_interactions(30, 20, 900, seed=14).astype({"user_id": str, "item_id": str})
    frame["event"] = "watch"
    frame.loc[0:3, "user_id"] = ["NULL", "NaN", "", "None"]
    frame.loc[4:6, "event"] = ["", "NULL", "nan"]
    frame.loc[7:9, "user_id"] = "NA"
    frame.loc[10:12, "item_id"] = "null"
    frame.to_csv(folder / "i.csv", index=False)
    (folder / "items.tsv").write_text(
        "iid\tgenre\tprice\ni1\tNA\t2\nNULL\tx\t1\nnull\t\t\ni1\ty\t3\n"
    )
    options = {
        **KEEP_ALL,
        "columns": {**COLUMNS, "EVENT_TYPE": "event"},
        "items": _metadata("raw/items.tsv", "iid", ["genre"], ["price"], fmt="tsv"),
    }
    (folder / "prep.json").write_text(json.dumps(prep_options_with(**options)))


def _run_both_jobs(folder, python):
    """prep then evaluate (on an oracle batch output built from prep's batch input)."""
    out = folder / "prepared"
    prep_args = ["--input", str(folder / "i.csv"), "--output", str(out)]
    prep_args += ["--options", str(folder / "prep.json"), "--items", str(folder / "items.tsv")]
    python("training.prep", prep_args)
    held = pd.read_csv(out / "evaluation" / "holdout.csv", dtype=str, keep_default_na=False)
    by_user = held.groupby("USER_ID")["ITEM_ID"].apply(list).to_dict()
    batch = folder / "batch-output" / "oracle"
    batch.mkdir(parents=True)
    lines = [json.loads(line) for line in (out / "batch-input" / "users.json").open()]
    rows = [
        {"input": u, "output": {"recommendedItems": by_user[u["userId"]]}, "error": None}
        for u in lines
    ]
    (batch / "users.json.out").write_text("".join(json.dumps(r) + "\n" for r in rows))
    evaluate_args = ["--prepared", str(out), "--personalize-output", str(batch)]
    python("training.evaluate", [*evaluate_args, "--output", str(folder / "report")])


def test_the_images_pandas_writes_the_same_files_and_scores(tmp_path):
    """The jobs run in SageMaker's scikit-learn 1.4-2 image (pandas 2.3, localaws's stand-in
    environment) and on the dev venv's pandas 3: same files, same scores."""
    import subprocess

    from localaws.sagemaker_images import IMAGES, ROOT
    from training import evaluate, prep

    image = IMAGES["sagemaker-scikit-learn:1.4-2-cpu-py3"]
    assert image.python.exists(), f"no {image.folder}: `make image-env` builds it"

    def in_image(module, args):
        done = subprocess.run(
            [str(image.python), "-m", module, *args],
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    def here(module, args):
        assert {"training.prep": prep, "training.evaluate": evaluate}[module].main(args) == 0

    runs = {}
    for label, python in (("dev", here), ("image", in_image)):
        runs[label] = tmp_path / label
        runs[label].mkdir()
        _null_spelling_data(runs[label])
        _run_both_jobs(runs[label], python)
    files = [
        "prepared/personalize/interactions.csv",
        "prepared/personalize/items.csv",
        "prepared/personalize/items.schema.json",
        "prepared/evaluation/holdout.csv",
        "prepared/maps/users.csv",
        "prepared/maps/items.csv",
        "prepared/batch-input/users.json",
    ]
    for name in files:
        assert (runs["dev"] / name).read_bytes() == (runs["image"] / name).read_bytes(), name
    manifests = [json.loads((runs[r] / "prepared" / "manifest.json").read_text()) for r in runs]
    for manifest in manifests:
        assert manifest["dropped"] == {
            "missing USER_ID": 4,
            "missing EVENT_TYPE": 3,
        }
        assert manifest["metadata"]["items"]["dropped"] == {
            "missing ITEM_ID": 1,
            "duplicate ITEM_ID": 1,
        }
    metrics = [json.loads((runs[r] / "report" / "metrics.json").read_text()) for r in runs]
    assert metrics[0]["results"].keys() == metrics[1]["results"].keys()
    for name, values in metrics[0]["results"].items():
        assert values == pytest.approx(metrics[1]["results"][name]), name
    assert [e["name"] for e in metrics[0]["leaderboard"]] == [
        e["name"] for e in metrics[1]["leaderboard"]
    ]
    assert metrics[0]["leaderboard"][0]["name"] == "personalize (oracle)"
    assert (runs["dev"] / "prepared/personalize/items.csv").read_text().splitlines() == [
        "ITEM_ID,genre,price",
        "null,,",
        "i1,y,3.0",
    ]
