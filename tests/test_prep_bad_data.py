"""Bad data as a new user's export has it: each case refused with a one-line message naming the
file and the fix (exit 2, no traceback), or skipped and counted in the manifest and the log."""

import json

import pytest

from tests.prep_options import prep_options_with
from training.prep import main

COLUMNS = {"USER_ID": "user_id", "ITEM_ID": "item_id", "TIMESTAMP": "timestamp"}
KEEP_ALL = {"columns": COLUMNS, "min_user_interactions": 1, "min_item_interactions": 1}
HEADER = "user_id,item_id,timestamp"


def _lines(n: int = 200, start: int = 0, time=lambda i: 1_600_000_000 + 3600 * i) -> list[str]:
    return [f"u{i % 20},i{i % 13},{time(i)}" for i in range(start, start + n)]


def _write(path, lines: list[str]) -> None:
    path.write_text("\n".join([HEADER, *lines]) + "\n")


def _prep(tmp_path, interactions, *flags, **options):
    (tmp_path / "prep.json").write_text(json.dumps(prep_options_with(**{**KEEP_ALL, **options})))
    out = tmp_path / "prepared"
    args = ["--input", str(interactions), "--output", str(out)]
    return main([*args, "--options", str(tmp_path / "prep.json"), *flags]), out


def _refused(capsys, code) -> str:
    """The one-line error of a refusal, with no traceback."""
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("prep failed: ")
    return lines[0]


def test_an_empty_file_is_named_and_an_empty_part_among_good_ones_is_skipped_and_counted(
    tmp_path, capsys
):
    (tmp_path / "empty.csv").write_text("")
    err = _refused(capsys, _prep(tmp_path, tmp_path / "empty.csv")[0])
    assert "empty.csv is empty (0 bytes)" in err
    parts = tmp_path / "parts"
    parts.mkdir()
    _write(parts / "part-0.csv", _lines(150))
    (parts / "part-1.csv").write_text("")
    _write(parts / "part-2.csv", _lines(150, start=150))
    code, out = _prep(tmp_path, parts)
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["rows_read"] == 300
    assert [p.rsplit("/", 1)[-1] for p in manifest["input"]["empty_files"]] == ["part-1.csv"]
    assert len(manifest["input"]["files"]) == 2
    assert "skipped 1 empty (0-byte) file(s): part-1.csv" in capsys.readouterr().out


def test_a_header_only_file_says_0_rows_were_read(tmp_path, capsys):
    _write(tmp_path / "i.csv", [])
    err = _refused(capsys, _prep(tmp_path, tmp_path / "i.csv")[0])
    assert "0 rows read from i.csv" in err
    assert "long-tail" not in err


@pytest.mark.parametrize(
    ("unit", "time", "fits", "shown"),
    [
        ("s", lambda i: f"2020-03-{1 + i % 28:02d}", "'date'", "dates, 100%"),
        ("s", lambda i: 1_600_000_000_000 + 3_600_000 * i, "'ms'", "years 52671"),
        ("ms", lambda i: 1_600_000_000 + 3600 * i, "'s'", "years 1970 to 1970"),
    ],
    ids=["iso-dates-as-seconds", "milliseconds-as-seconds", "seconds-as-milliseconds"],
)
def test_timestamps_in_the_wrong_unit_name_the_unit_that_fits(
    tmp_path, capsys, unit, time, fits, shown
):
    _write(tmp_path / "i.csv", _lines(time=time))
    err = _refused(capsys, _prep(tmp_path, tmp_path / "i.csv", timestamp_unit=unit)[0])
    assert "200 of 200 TIMESTAMP values are not plausible" in err
    assert f"set data.interactions.timestamp_unit to {fits}" in err
    assert shown in err


def test_small_counters_fit_no_unit_and_are_kept_as_before(tmp_path):
    _write(tmp_path / "i.csv", _lines(time=lambda i: i))
    code, out = _prep(tmp_path, tmp_path / "i.csv")
    assert code == 0
    assert json.loads((out / "manifest.json").read_text())["rows"]["clean"] == 200


def test_duplicate_metadata_ids_are_counted_and_the_last_row_wins(tmp_path, capsys):
    _write(tmp_path / "i.csv", _lines())
    (tmp_path / "items.csv").write_text("iid,genre\ni1,old\ni2,x\ni1,new\ni3,y\ni2,z\n")
    items = {
        "path": "raw/items.csv",
        "id_column": "iid",
        "format": "csv",
        "categorical": ["genre"],
        "numerical": [],
    }
    flags = ["--items", str(tmp_path / "items.csv")]
    code, out = _prep(tmp_path, tmp_path / "i.csv", *flags, items=items)
    assert code == 0
    summary = json.loads((out / "manifest.json").read_text())["metadata"]["items"]
    assert summary["rows_read"] == 5
    assert summary["rows"] == 3
    assert summary["dropped"] == {"duplicate ITEM_ID": 2}
    assert summary["duplicate_ids"].startswith("the last row of each id is kept")
    assert "items: of rows sharing an id, the last row of each id is kept" in (
        capsys.readouterr().out
    )
    written = (out / "personalize" / "items.csv").read_text().splitlines()
    assert sorted(written[1:]) == ["i1,new", "i2,z", "i3,y"]


def test_an_unbalanced_quote_is_refused_with_its_line(tmp_path, capsys):
    lines = _lines(300)
    lines[99] = lines[99].replace(",i", ',"i', 1)  # file line 101 opens a quote...
    lines[249] = lines[249].replace(",1", '",1', 1)  # ...that line 251 closes
    _write(tmp_path / "i.csv", lines)
    err = _refused(capsys, _prep(tmp_path, tmp_path / "i.csv")[0])
    assert "i.csv line 101: a quoted field opens here and closes only at line 251" in err
    assert "(150 rows from 300 lines)" in err
    lines[249] = lines[249].replace('",1', ",1")  # now never closed
    _write(tmp_path / "i.csv", lines)
    err = _refused(capsys, _prep(tmp_path, tmp_path / "i.csv")[0])
    assert "i.csv line 101: a quoted field opens here and is never closed" in err


def test_an_unbalanced_quote_in_a_column_prep_does_not_read_is_refused(tmp_path, capsys):
    lines = [f"{line},Title {n}" for n, line in enumerate(_lines(300))]
    lines[99] = lines[99].replace(",Title", ',"Title')  # opens at line 101, closes at the end
    (tmp_path / "i.csv").write_text("\n".join([f"{HEADER},title", *lines, 'u1,i1,1,x"']) + "\n")
    err = _refused(capsys, _prep(tmp_path, tmp_path / "i.csv")[0])
    assert "i.csv line 101: a quoted field opens here and closes only at line 302" in err


def test_quoted_newlines_in_a_column_prep_does_not_read_pass(tmp_path):
    lines = [f'{line},"a review\nover two lines"' for line in _lines()]
    (tmp_path / "i.csv").write_text("\n".join([f"{HEADER},review", *lines]) + "\n")
    code, out = _prep(tmp_path, tmp_path / "i.csv")
    assert code == 0
    assert json.loads((out / "manifest.json").read_text())["input"]["rows_read"] == 200


def test_an_options_path_that_does_not_exist_is_refused(tmp_path, capsys):
    _write(tmp_path / "i.csv", _lines())
    args = ["--input", str(tmp_path / "i.csv"), "--output", str(tmp_path / "out")]
    err = _refused(capsys, main([*args, "--options", str(tmp_path / "typo.json")]))
    assert f"no options file at {tmp_path / 'typo.json'}" in err
    assert "python -m recops.contracts CONFIG prep" in err
    (tmp_path / "bad.json").write_text("{not json")
    err = _refused(capsys, main([*args, "--options", str(tmp_path / "bad.json")]))
    assert "is not JSON" in err
    assert not (tmp_path / "out").exists()
