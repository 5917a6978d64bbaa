"""The data the config names, checked before anything is billed: it exists, it has the columns
the config names, and it holds what Amazon Personalize needs to train.

Files are selected as the prep job selects them (`training.input_formats`): the object at the
path, or every object of the format under the path taken as a folder. CSV and TSV are streamed
and counted only until the minimums are met (at least `MIN_INTERACTIONS` interactions and
`MIN_USERS_WITH_TWO` users with two or more; Personalize's limits page), so a 10 GB file costs a
few kilobytes here; what was read is reported (`rowsRead`, `filesRead`, `stoppedEarly`).
Counted as an interaction: a row whose user id, item id and (when mapped) event type are not
missing (`training.input_formats.MISSING_TEXT`: empty, or a spelling of null), on the raw rows,
before prep's own filters. Parquet is not read here: the Lambda has no
pyarrow, so its files are listed and the counts and columns are reported as not checked.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from recops.config import MetadataSource, PipelineConfig, TableSource
from training.input_formats import MISSING_TEXT, SUFFIXES, is_data_file

from .errors import DataRejectedError

MIN_INTERACTIONS = 1000
MIN_USERS_WITH_TWO = 25
LIMITS_DOC = "https://docs.aws.amazon.com/personalize/latest/dg/limits.html"
CHUNK = 64 * 1024
# csv.reader's options matching how prep's pandas reads each format (training/interactions.py)
DIALECTS = {"csv": {"delimiter": ","}, "tsv": {"delimiter": "\t", "quoting": csv.QUOTE_NONE}}
PARQUET_NOT_READ = (
    "parquet is not read by the plan step: reading it needs pyarrow, which the Lambda bundle "
    "leaves out (a binary of about 100 MB); the prep job reads it, and Personalize's import "
    "refuses data below its minimums"
)


@dataclass
class InteractionCount:
    """What was read of the interactions, and what it holds."""

    files: int
    files_read: int = 0
    rows_read: int = 0
    interactions: int = 0
    users_with_two: int = 0
    stopped_early: bool = False

    def enough(self) -> bool:
        return self.interactions >= MIN_INTERACTIONS and self.users_with_two >= MIN_USERS_WITH_TWO

    def as_checks(self) -> dict[str, Any]:
        """The counts as the plan's output names them."""
        return {
            "files": self.files,
            "filesRead": self.files_read,
            "rowsRead": self.rows_read,
            "interactions": self.interactions,
            "usersWithTwo": self.users_with_two,
            "stoppedEarly": self.stopped_early,
        }


def check_data(
    s3: Any, bucket: str, config: PipelineConfig, *, need_minimums: bool
) -> dict[str, Any]:
    """Every data source of the config checked; raises DataRejectedError naming what to fix."""
    checks = {"interactions": check_interactions(s3, bucket, config.data.interactions)}
    if need_minimums:
        refuse_below_minimums(checks["interactions"], bucket, config.data.interactions)
    for kind in ("users", "items"):
        source = getattr(config.data, kind)
        if source is not None:
            checks[kind] = check_metadata(s3, bucket, f"data.{kind}", source)
    return checks


@contextmanager
def readable(field: str, bucket: str, path: str) -> Iterator[None]:
    """S3 refusing the step its read becomes a refusal naming the field, not a bare AccessDenied."""
    try:
        yield
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code not in ("AccessDenied", "403", "AllAccessDisabled"):
            raise
        raise DataRejectedError(
            f"{field}.path {path!r}: the plan step may not read s3://{bucket}/{path} ({code}). "
            "The stack lets its steps and jobs read only part of the data bucket (raw/ in its "
            f"layout): upload the data under raw/ and set {field}.path to it"
        ) from None


def check_interactions(s3: Any, bucket: str, source: TableSource) -> dict[str, Any]:
    with readable("data.interactions", bucket, source.path):
        return _check_interactions(s3, bucket, source)


def _check_interactions(s3: Any, bucket: str, source: TableSource) -> dict[str, Any]:
    field = "data.interactions"
    keys = data_files(s3, bucket, field, source.path, source.format)
    if source.format == "parquet":
        return _not_read(keys)
    wanted = {
        f"{field}.columns.{name}": column
        for name, column in source.columns.model_dump().items()
        if column
    }
    count = InteractionCount(files=len(keys))
    seen: dict[str, int] = {}
    for key in keys:
        with closing(object_lines(s3, bucket, key)) as lines:
            reader = csv.reader(lines, **DIALECTS[source.format])
            header = _header(reader, bucket, key, wanted)
            if count.enough():
                continue  # the header is checked in every file; the rows are counted no further
            count.files_read += 1
            required = [source.columns.user_id, source.columns.item_id]
            if source.columns.event_type:  # prep drops a row without one, as Personalize would
                required.append(source.columns.event_type)
            _count_rows(reader, [header.index(column) for column in required], count, seen)
    return {"format": source.format, "counted": True, "columnsChecked": True, **count.as_checks()}


def _count_rows(
    reader: Iterator[list[str]], required: list[int], count: InteractionCount, seen: dict
) -> None:
    """Count rows until the minimums are met or the file ends. required: the user's column,
    the item's, and the event type's when mapped; a row missing one is no interaction."""
    user, width = required[0], max(required)
    for row in reader:
        if not row:
            continue  # a blank line, which pandas skips too
        count.rows_read += 1
        if len(row) <= width or any(row[column] in MISSING_TEXT for column in required):
            continue
        count.interactions += 1
        seen[row[user]] = times = seen.get(row[user], 0) + 1
        if times == 2:
            count.users_with_two += 1
        if count.enough():
            count.stopped_early = True
            return


def refuse_below_minimums(checks: dict[str, Any], bucket: str, source: TableSource) -> None:
    if not checks["counted"]:
        return
    if checks["interactions"] >= MIN_INTERACTIONS and checks["usersWithTwo"] >= MIN_USERS_WITH_TWO:
        return
    raise DataRejectedError(
        f"data.interactions.path {source.path!r} (s3://{bucket}/{source.path}, "
        f"{checks['files']} {source.format} file(s)) holds {checks['interactions']:,} "
        f"interactions and {checks['usersWithTwo']:,} users with 2 or more; Amazon Personalize "
        f"needs at least {MIN_INTERACTIONS:,} interactions and {MIN_USERS_WITH_TWO} users with 2 "
        f"or more to train ({LIMITS_DOC}): add interactions under data.interactions.path, or "
        "remove personalize.solutions and personalize.recommenders (or set personalize.enabled "
        "to false) to run without Personalize"
    )


def check_metadata(s3: Any, bucket: str, field: str, source: MetadataSource) -> dict[str, Any]:
    with readable(field, bucket, source.path):
        return _check_metadata(s3, bucket, field, source)


def _check_metadata(s3: Any, bucket: str, field: str, source: MetadataSource) -> dict[str, Any]:
    keys = data_files(s3, bucket, field, source.path, source.format)
    if source.format == "parquet":
        return _not_read(keys)
    wanted = {f"{field}.id_column": source.id_column}
    for kind in ("categorical", "numerical"):
        for index, column in enumerate(getattr(source, kind)):
            wanted[f"{field}.{kind}.{index}"] = column
    for key in keys:
        with closing(object_lines(s3, bucket, key)) as lines:
            _header(csv.reader(lines, **DIALECTS[source.format]), bucket, key, wanted)
    return {"format": source.format, "files": len(keys), "columnsChecked": True}


def _not_read(keys: list[str]) -> dict[str, Any]:
    return {
        "format": "parquet",
        "files": len(keys),
        "counted": False,
        "columnsChecked": False,
        "why": PARQUET_NOT_READ,
    }


def data_files(s3: Any, bucket: str, field: str, path: str, fmt: str) -> list[str]:
    """The keys prep reads for this source: the object at `path`, or every object of the format
    under `path` as a folder (sorted, as prep sorts them). Empty (0-byte) parts among non-empty
    ones are left out, as prep skips them and lists them in its manifest; when every file is
    empty they stay, so the first one is refused by name."""
    sizes = {
        item["Key"]: item.get("Size", 0)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=path)
        for item in page.get("Contents", [])
    }
    listed = list(sizes)
    if path in listed:
        return [path]
    folder = path if path.endswith("/") else path + "/"
    keys = sorted(k for k in listed if k.startswith(folder) and is_data_file(k, fmt))
    if not keys:
        raise DataRejectedError(
            f"{field}.path {path!r}: there is no object s3://{bucket}/{path} and no {fmt} file "
            f"({', '.join(SUFFIXES[fmt])}) under s3://{bucket}/{folder}: upload the data there "
            f"(aws s3 cp FILE s3://{bucket}/{folder}), or set {field}.path to where it is"
            + (f" and {field}.format to its format" if listed else "")
        )
    non_empty = [k for k in keys if sizes[k] > 0]
    return non_empty or keys


def object_lines(s3: Any, bucket: str, key: str) -> Iterator[str]:
    """The object's text lines, streamed (close the generator to stop reading)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    pending = ""
    try:
        for chunk in body.iter_chunks(CHUNK):
            pending += decoder.decode(chunk)
            cut = pending.rfind("\n") + 1
            if cut:
                # newline="": lines end where csv expects them; quoted newlines stay inside a row
                yield from io.StringIO(pending[:cut], newline="")
                pending = pending[cut:]
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending
    finally:
        body.close()


def _header(
    reader: Iterator[list[str]], bucket: str, key: str, wanted: dict[str, str]
) -> list[str]:
    """The file's column names; every column the config names must be one of them."""
    header = [name.strip() for name in next(reader, [])]
    if not header:
        raise DataRejectedError(
            f"s3://{bucket}/{key} is empty: the first line must name the columns "
            f"({', '.join(sorted(set(wanted.values())))}); upload the complete file"
        )
    missing = {field: column for field, column in wanted.items() if column not in header}
    if missing:
        problems = "; ".join(f"{field} is {column!r}" for field, column in missing.items())
        raise DataRejectedError(
            f"s3://{bucket}/{key} has no column named as the config says: {problems}. The "
            f"file's columns: {header[:30]}. Set those fields to the file's column names, or "
            "give the file a header line with them"
        )
    return header
