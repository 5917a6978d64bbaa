"""The numpy CSV writer writes what pandas' to_csv(index=False) writes, byte for byte."""

import numpy as np
import pandas as pd
import pytest

from training import csv_writer
from training.csv_writer import write_csv


def _frame(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    titles = np.array(
        [
            "Toy Story (1995)",
            "American President, The (1995)",
            'He said "hi"',
            "two\nlines",
            "ünïcode",
            "plain",
            "cr\r",
            "",
        ],
        dtype=object,
    )
    return pd.DataFrame(
        {
            "USER_ID": pd.array([f"u{u}" for u in rng.integers(0, 300, n)]),
            "ITEM_ID": titles[rng.integers(0, len(titles), n)],
            "TIMESTAMP": rng.integers(-(2**62), 2**62, n),
            "EVENT_VALUE": rng.choice([1.0, 2.5, 4.0, 1e-5, 1e20, 0.1, -3.0, np.nan], n),
        }
    )


def test_matches_pandas_including_quotes_line_breaks_and_missing_values(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_writer, "BLOCK_ROWS", 777)  # several blocks, a short last one
    frame = _frame()
    frame.loc[3, "TIMESTAMP"] = 0
    write_csv(tmp_path / "a.csv", {c: frame[c] for c in frame})
    assert (tmp_path / "a.csv").read_bytes() == frame.to_csv(index=False).encode()


def test_coded_text_and_integer_extremes(tmp_path):
    ids = np.array(["a,b", "c", 'q"uote'], dtype=object)
    codes = np.array([2, 0, 1, 1, 0])
    numbers = np.array([0, -1, 9, 10, np.iinfo(np.int64).min + 1], np.int64)
    write_csv(tmp_path / "b.csv", {"index": numbers, "ID": (ids, codes)})
    expected = pd.DataFrame({"index": numbers, "ID": ids[codes]}).to_csv(index=False)
    assert (tmp_path / "b.csv").read_text() == expected


def test_tsv_without_quoting_round_trips_as_prep_reads_it(tmp_path):
    frame = _frame(300, seed=1)
    frame = frame[~frame["ITEM_ID"].str.contains("\n|\r|\t", regex=True)]
    write_csv(tmp_path / "c.tsv", {c: frame[c] for c in frame}, sep="\t", quote=False)
    back = pd.read_csv(
        tmp_path / "c.tsv",
        sep="\t",
        quoting=3,
        dtype={"USER_ID": str, "ITEM_ID": str},
        keep_default_na=False,
        na_values=[""],
    )
    assert back["ITEM_ID"].fillna("").tolist() == frame["ITEM_ID"].tolist()
    assert back["TIMESTAMP"].tolist() == frame["TIMESTAMP"].tolist()


@pytest.mark.parametrize("rows", [0, 1])
def test_empty_and_single_row(tmp_path, rows):
    frame = _frame(rows)
    write_csv(tmp_path / "d.csv", {c: frame[c] for c in frame})
    assert (tmp_path / "d.csv").read_bytes() == frame.to_csv(index=False).encode()
