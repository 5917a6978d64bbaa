"""How the config's data is read: which files of a folder (an S3 prefix) by format, and which
texts stand for a missing value.

Numpy-free on purpose: the prep job (training/interactions.py) and the plan Lambda, which checks
and counts the same files before anything is billed, read them by these rules.
"""

from __future__ import annotations

SUFFIXES = {"csv": (".csv",), "tsv": (".tsv", ".inter", ".txt"), "parquet": (".parquet",)}
# A missing id or EVENT_TYPE: an empty field or a spelling exports write for null (exactly these
# strings; "NA" or "null" are real values). Rows with one are dropped (training/interactions.py).
MISSING_TEXT = ("", "NULL", "NaN", "nan", "None")


def is_data_file(name: str, fmt: str) -> bool:
    """True when a file (or S3 key) of this name is read as data of this format."""
    return name.endswith(SUFFIXES[fmt])
