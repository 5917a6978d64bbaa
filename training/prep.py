"""The training-data preparation job: `python -m training.prep`.

Runs unchanged inside the SageMaker scikit-learn processing container (defaults are the
/opt/ml/processing paths) and on a laptop (the flags override them). Options arrive as a plain
JSON file holding every option, written from the pipeline config by
`recops.contracts.prep_options` (`python -m recops.contracts CONFIG prep > prep.json`); no
pydantic here, and no defaults: a missing or unknown option fails the job before it reads data.

Inputs: --input (interactions: a file, or a folder of files); --users and --items (metadata,
a file or a folder, read only when the options have `users`/`items`; the options' `path` is
where the workflow finds them in the data bucket, mounted here).

Outputs, each its own place so the workflow can put each under its own S3 prefix:
  --output (prepared data):
    fm/train/*.recordio, fm/test/*.recordio  Factorization Machines channels (RecordIO-protobuf)
    evaluation/holdout.csv                    the held-out interactions, original ids
    maps/users.csv, maps/items.csv            index -> original id
    manifest.json                             counts, density, and what was dropped and why
  --personalize-output (default <output>/personalize), the Personalize import files:
    interactions.csv (training part only), users.csv, items.csv, each with its .schema.json
  --batch-input-output (default <output>/batch-input), the Personalize batch input:
    users.json                                {"userId": "<id>"} per user with a held-out
                                              interaction, one JSON line each, ids as the CSVs
                                              write them

Missing values: an id or EVENT_TYPE that is empty, null, or exactly "NULL", "NaN", "nan" or
"None" is missing; its row is dropped and counted as "missing USER_ID" (ITEM_ID, EVENT_TYPE) in
the manifest's `dropped` and the log; any other text ("NA", "null") is a real value. Metadata
rows without an id are counted under the manifest's `metadata.<users|items>.dropped`. Metadata
whose columns do not match the options fails the job before anything is written.

Bad data (training/input_files_checks.py, interactions.check_timestamp_unit) is refused with one
line naming the file and the fix, or skipped and counted: 0-byte parts are skipped and listed in
the manifest's `input.empty_files` (all of them empty: refused); a header-only input says 0 rows
were read; timestamps mostly outside 1990..now+1 year that another timestamp_unit reads as
plausible name that unit; a quoted field that swallows lines names its line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from training import recordio
from training.csv_writer import plain_text, write_csv
from training.features import (
    Examples,
    SeenItems,
    binary_target,
    implicit_target,
    one_hot,
    regression_target,
)
from training.input_files_checks import skip_empty
from training.interactions import (
    Dropped,
    Indexed,
    days_since_first,
    deduplicate,
    drop_missing_ids,
    filter_long_tail,
    index_ids,
    input_files,
    read_interactions,
)
from training.metadata import DUPLICATE_RULE, Metadata, read_metadata
from training.personalize_files import write_interactions, write_metadata
from training.split import leave_last_out, temporal_holdout

PROCESSING = Path("/opt/ml/processing")
METADATA_INPUTS = {"users": PROCESSING / "input" / "users", "items": PROCESSING / "input" / "items"}
BATCH_INPUT_FILE = "users.json"


@dataclass(frozen=True)
class Locations:
    """Where the job reads metadata and writes. The workflow maps each output to its own S3
    prefix (prepared data, Personalize import, batch input) so each role gets exactly its own."""

    output: Path
    personalize: Path
    batch_input: Path
    users: Path
    items: Path

    @classmethod
    def under(
        cls,
        output: Path,
        *,
        personalize: Path | None = None,
        batch_input: Path | None = None,
        users: Path | None = None,
        items: Path | None = None,
    ) -> Locations:
        """Today's places under --output unless given: personalize/ and batch-input/."""
        return cls(
            output,
            personalize or output / "personalize",
            batch_input or output / "batch-input",
            users or METADATA_INPUTS["users"],
            items or METADATA_INPUTS["items"],
        )


@dataclass
class MetadataOptions:
    path: str  # in the data bucket: the workflow mounts it at --users/--items; unused here
    id_column: str
    format: str
    categorical: list[str]
    numerical: list[str]


@dataclass
class PrepOptions:
    """Every option of the job. No defaults here: the options file is written from the config
    by recops.contracts.prep_options, which holds each default once; a missing or unknown
    option is an error, not a silent fallback."""

    format: str
    columns: dict[str, str | None]
    timestamp_unit: str
    min_user_interactions: int
    min_item_interactions: int
    filter_until_stable: bool
    split: str
    holdout_fraction: float
    target: str
    rating_threshold: float
    negatives_per_positive: int
    days_since_first: bool
    shard_records: int
    seed: int
    users: MetadataOptions | None
    items: MetadataOptions | None

    @classmethod
    def from_dict(cls, raw: dict) -> PrepOptions:
        values = _exact_keys(cls, raw, "prep options")
        for key in ("users", "items"):
            if values[key] is not None:
                values[key] = MetadataOptions(**_exact_keys(MetadataOptions, values[key], key))
        options = cls(**values)
        options.validate()
        return options

    def validate(self) -> None:
        choices = {
            "format": ("csv", "tsv", "parquet"),
            "split": ("temporal_holdout", "leave_last_out"),
            "target": ("regression", "binary", "implicit"),
            "timestamp_unit": ("s", "ms", "date"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}; allowed: {', '.join(allowed)}")
        if self.target != "implicit" and not self.columns.get("EVENT_VALUE"):
            raise ValueError(f"target {self.target!r} needs a rating: map EVENT_VALUE in columns")
        if not self.columns.get("TIMESTAMP"):
            raise ValueError(
                "columns: TIMESTAMP is not mapped; the temporal holdout and Personalize's "
                "interactions need the event time: map TIMESTAMP to the column holding it"
            )


def _exact_keys(kind: type, raw: object, what: str) -> dict:
    """The raw options if they name every field of the dataclass and nothing else."""
    if not isinstance(raw, dict):
        raise ValueError(f"{what} must be a JSON object, not {type(raw).__name__}")
    known = [f.name for f in fields(kind)]
    unknown = sorted(set(raw) - set(known))
    missing = [name for name in known if name not in raw]
    if unknown or missing:
        raise ValueError(
            f"{what}: unknown {unknown or 'none'}, missing {missing or 'none'}; the options "
            "file is written by recops.contracts.prep_options (python -m recops.contracts "
            "CONFIG prep)"
        )
    return dict(raw)


@dataclass
class Prepared:
    indexed: Indexed  # clean interactions with indices, all of them
    is_holdout: np.ndarray
    extra: np.ndarray | None  # days_since_first of each interaction, when it is a feature
    feature_dim: int
    dropped: Dropped


def log(message: str) -> None:
    print(f"[prep {time.strftime('%H:%M:%S')}] {message}", flush=True)


def prepare(raw: pd.DataFrame, options: PrepOptions, dropped: Dropped) -> Prepared:
    """Clean, filter, index, split and label: every step on whole arrays."""
    indexed = deduplicate(drop_missing_ids(index_ids(raw), dropped), dropped)
    if indexed.frame.empty:
        raise ValueError(
            f"interactions: no row has both ids (dropped {dropped.as_dict()}); check "
            "data.interactions.columns maps USER_ID and ITEM_ID to the id columns"
        )
    indexed = filter_long_tail(
        indexed,
        options.min_user_interactions,
        options.min_item_interactions,
        dropped,
        until_stable=options.filter_until_stable,
    )
    if indexed.frame.empty:
        raise ValueError(
            "no interactions left after the long-tail filter: lower min_user_interactions "
            f"({options.min_user_interactions}) or min_item_interactions "
            f"({options.min_item_interactions})"
        )
    frame = indexed.frame
    if options.split == "temporal_holdout":
        is_holdout = temporal_holdout(frame, options.holdout_fraction)
    else:
        is_holdout = leave_last_out(frame)
    extra = days_since_first(frame) if options.days_since_first else None
    feature_dim = indexed.n_users + indexed.n_items + (1 if extra is not None else 0)
    return Prepared(indexed, is_holdout, extra, feature_dim, dropped)


@dataclass
class FMChannel:
    """What one FM channel wrote."""

    shards: list[Path]
    records: int
    negatives_dropped: int


def write_fm_channel(
    directory: Path,
    stem: str,
    prepared: Prepared,
    rows: np.ndarray,
    options: PrepOptions,
    *,
    seen: SeenItems | None,
    seed: int,
) -> FMChannel:
    """The FM records of these interactions, built and written one shard at a time, so that
    memory does not grow with the number of records (implicit: each positive, then its
    negatives, never split across shards). A shard is written while the next one is built:
    the disk and the encoder overlap, and at most two shards are in memory."""
    directory.mkdir(parents=True, exist_ok=True)
    indexed = prepared.indexed
    per_positive = 1 + options.negatives_per_positive if options.target == "implicit" else 1
    step = max(1, options.shard_records // per_positive)
    rng = np.random.default_rng(seed)
    written = FMChannel([], 0, 0)
    pending: Future | None = None
    with ThreadPoolExecutor(max_workers=1) as writer:
        for shard, start in enumerate(range(0, max(len(rows), 1), step)):
            examples = _examples(prepared, rows[start : start + step], options, rng, seen)
            matrix = one_hot(examples, indexed.n_users, indexed.n_items)
            parts = recordio.encode_sparse_parts(matrix, examples.label)
            del matrix
            path = directory / f"{stem}-{shard:05d}.recordio"
            if pending is not None:
                pending.result()  # raises the previous write's error, if any
            pending = writer.submit(_write_parts, path, parts)
            del parts
            written.shards.append(path)
            written.records += len(examples.label)
            written.negatives_dropped += examples.negatives_dropped
        if pending is not None:
            pending.result()
    return written


def _write_parts(path: Path, parts: list) -> None:
    with open(path, "wb") as out:
        for part in parts:
            out.write(part)


def _examples(
    prepared: Prepared,
    rows: np.ndarray,
    options: PrepOptions,
    rng: np.random.Generator,
    seen: SeenItems | None,
) -> Examples:
    frame = prepared.indexed.frame
    user = frame["user"].to_numpy()[rows]
    item = frame["item"].to_numpy()[rows]
    extra = None if prepared.extra is None else prepared.extra[rows]
    if options.target == "implicit":
        return implicit_target(
            user,
            item,
            prepared.indexed.n_items,
            options.negatives_per_positive,
            seed=rng,
            extra=extra,
            seen=seen,
        )
    rating = frame["EVENT_VALUE"].to_numpy()[rows]
    if options.target == "binary":
        return binary_target(user, item, rating, options.rating_threshold, extra)
    return regression_target(user, item, rating, extra)


def _write_fm(prepared: Prepared, output: Path, options: PrepOptions) -> dict:
    """Both FM channels. Training negatives avoid the training pairs only (nothing of the
    holdout leaks into training); test negatives avoid every observed pair."""
    indexed = prepared.indexed
    user, item = indexed.frame["user"].to_numpy(), indexed.frame["item"].to_numpy()
    train_rows = np.flatnonzero(~prepared.is_holdout)
    test_rows = np.flatnonzero(prepared.is_holdout)
    seen = {"train": None, "test": None}
    if options.target == "implicit":
        seen["train"] = SeenItems.of(
            user[train_rows], item[train_rows], indexed.n_users, indexed.n_items
        )
        seen["test"] = SeenItems.of(user, item, indexed.n_users, indexed.n_items)
    channels = {}
    for channel, rows, seed in (
        ("train", train_rows, options.seed),
        ("test", test_rows, options.seed + 1),
    ):
        channels[channel] = write_fm_channel(
            output / "fm" / channel, channel, prepared, rows, options, seen=seen[channel], seed=seed
        )
        log(
            f"fm/{channel}: {channels[channel].records:,} records in {len(channels[channel].shards)} shard(s)"
        )
    return {
        "feature_dim": prepared.feature_dim,
        "target": options.target,
        "train_records": channels["train"].records,
        "test_records": channels["test"].records,
        "negatives_dropped": sum(c.negatives_dropped for c in channels.values()),
        "shards": {
            name: [str(p.relative_to(output)) for p in c.shards] for name, c in channels.items()
        },
    }


def write_tables(prepared: Prepared, output: Path, personalize: Path) -> dict:
    """The Personalize interactions (training part) under `personalize`, the holdout and the id
    maps under `output`, as CSV; returns the interactions schema."""
    indexed, frame, held = prepared.indexed, prepared.indexed.frame, prepared.is_holdout
    user, item = frame["user"].to_numpy(), frame["item"].to_numpy()

    def part(rows: np.ndarray) -> dict[str, object]:
        columns = {
            "USER_ID": (indexed.user_ids, user[rows]),
            "ITEM_ID": (indexed.item_ids, item[rows]),
        }
        for name in ("TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"):
            if name in frame:
                columns[name] = frame[name].to_numpy()[rows]
        return columns

    schema = write_interactions(part(~held), personalize)
    evaluation = output / "evaluation"
    evaluation.mkdir(parents=True, exist_ok=True)
    holdout = part(held)
    write_csv(
        evaluation / "holdout.csv",
        {c: holdout[c] for c in ("USER_ID", "ITEM_ID", "TIMESTAMP") if c in holdout},
    )
    maps = output / "maps"
    maps.mkdir(parents=True, exist_ok=True)
    for name, ids in (("users", indexed.user_ids), ("items", indexed.item_ids)):
        canonical = "USER_ID" if name == "users" else "ITEM_ID"
        codes = np.arange(len(ids))
        write_csv(maps / f"{name}.csv", {"index": codes, canonical: (ids, codes)})
    return schema


def write_batch_input(prepared: Prepared, directory: Path) -> int:
    """users.json: one `{"userId": ...}` line per user with a held-out interaction, the ids
    written as the CSVs write them (one line per user, not per interaction)."""
    indexed = prepared.indexed
    users = np.unique(indexed.frame["user"].to_numpy()[prepared.is_holdout])
    lines = [json.dumps({"userId": plain_text(uid)}) + "\n" for uid in indexed.user_ids[users]]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / BATCH_INPUT_FILE).write_text("".join(lines))
    return len(lines)


def write_outputs(prepared: Prepared, locations: Locations, options: PrepOptions) -> dict:
    """Every output. The CSV tables are written in a second thread while the FM channels are
    built: the FM records' sampling and one-hot steps use one core, the CSV writer the other."""
    indexed = prepared.indexed
    frame = indexed.frame
    with ThreadPoolExecutor(max_workers=1) as tables:
        schema_written = tables.submit(
            write_tables, prepared, locations.output, locations.personalize
        )
        fm = _write_fm(prepared, locations.output, options)
        schema = schema_written.result()
    batch_users = write_batch_input(prepared, locations.batch_input)
    log(f"batch input: {batch_users:,} users with a held-out interaction")
    n_train = int((~prepared.is_holdout).sum())
    return {
        "rows": {"clean": len(frame), "train": n_train, "holdout": len(frame) - n_train},
        "users": indexed.n_users,
        "items": indexed.n_items,
        "density": len(frame) / (indexed.n_users * indexed.n_items),
        "dropped": prepared.dropped.as_dict(),
        "fm": fm,
        "personalize": {"interactions": n_train, "schema": schema},
        "batch_input": {"users": batch_users, "file": BATCH_INPUT_FILE},
        "options": _jsonable(asdict(options)),
    }


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def run(
    input_path: Path,
    output: Path,
    options: PrepOptions,
    *,
    personalize: Path | None = None,
    batch_input: Path | None = None,
    users: Path | None = None,
    items: Path | None = None,
) -> dict:
    """The whole job (the places as in Locations.under). Everything that can refuse the data
    (metadata columns and types, interactions columns, nothing left) does so before the first
    file is written."""
    started = time.perf_counter()
    locations = Locations.under(
        output, personalize=personalize, batch_input=batch_input, users=users, items=items
    )
    metadata = read_metadata_tables(options, locations)
    dropped = Dropped()
    files, empty = skip_empty(input_files(input_path, options.format), "interactions")
    log(f"reading {len(files)} {options.format} file(s) from {input_path}")
    if empty:
        log(f"skipped {len(empty)} empty (0-byte) file(s): {_names(empty)}")
    raw = read_interactions(files, options.format, options.columns, options.timestamp_unit, dropped)
    rows_read = len(raw) + sum(v for k, v in dropped.counts.items())
    log(f"{len(raw):,} interactions read; skipped so far: {dropped.as_dict() or 'none'}")
    _refuse_when_nothing_read(raw, rows_read, files, dropped)
    prepared = prepare(raw, options, dropped)
    log(
        f"{len(prepared.indexed.frame):,} interactions kept: {prepared.indexed.n_users:,} users, "
        f"{prepared.indexed.n_items:,} items; holdout {int(prepared.is_holdout.sum()):,}"
    )
    manifest = write_outputs(prepared, locations, options)
    manifest["input"] = {
        "files": [str(f) for f in files],
        "rows_read": rows_read,
        "empty_files": [str(f) for f in empty],
    }
    manifest["metadata"] = _write_metadata(metadata, locations.personalize, options)
    manifest["seconds"] = round(time.perf_counter() - started, 3)
    output.mkdir(parents=True, exist_ok=True)
    (output / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log(f"done in {manifest['seconds']} s; dropped: {manifest['dropped'] or 'nothing'}")
    return manifest


def _refuse_when_nothing_read(
    raw: pd.DataFrame, rows_read: int, files: list[Path], dropped: Dropped
) -> None:
    """Say what is wrong when no row survives reading, before a later step blames its filter."""
    if len(raw):
        return
    if rows_read == 0:
        raise ValueError(
            f"interactions: 0 rows read from {_names(files)}: the file(s) hold a header line "
            "and no data; check the export, and data.interactions.path"
        )
    raise ValueError(
        f"interactions: none of the {rows_read:,} rows read from {_names(files)} is usable: "
        f"dropped {dropped.as_dict()}; check data.interactions.columns and timestamp_unit"
    )


def _names(files: list[Path]) -> str:
    shown = ", ".join(f.name for f in files[:3])
    return shown + (f" and {len(files) - 3} more" if len(files) > 3 else "")


def read_metadata_tables(options: PrepOptions, locations: Locations) -> dict[str, Metadata]:
    """The users and items tables the options ask for, checked (training.metadata)."""
    tables = {}
    for kind in ("users", "items"):
        spec: MetadataOptions | None = getattr(options, kind)
        if spec is None:
            continue
        tables[kind] = read_metadata(
            kind,
            getattr(locations, kind),
            fmt=spec.format,
            id_column=spec.id_column,
            categorical=spec.categorical,
            numerical=spec.numerical,
        )
        table = tables[kind]
        log(
            f"{kind}: {len(table.frame):,} rows kept of {table.rows_read:,}; "
            f"dropped: {table.dropped.as_dict() or 'none'}"
        )
        if any(reason.startswith("duplicate") for reason in table.dropped.counts):
            log(f"{kind}: of rows sharing an id, {DUPLICATE_RULE}")
        if table.empty_files:
            log(f"{kind}: skipped {len(table.empty_files)} empty (0-byte) file(s)")
    return tables


def _write_metadata(tables: dict[str, Metadata], directory: Path, options: PrepOptions) -> dict:
    for kind, table in tables.items():
        spec: MetadataOptions = getattr(options, kind)
        write_metadata(
            table.frame,
            directory,
            kind=kind,
            id_column=spec.id_column,
            categorical=spec.categorical,
            numerical=spec.numerical,
        )
    return {kind: table.summary() for kind, table in tables.items()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.prep", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--input", type=Path, default=PROCESSING / "input" / "interactions")
    parser.add_argument("--output", type=Path, default=PROCESSING / "output")
    parser.add_argument(
        "--personalize-output",
        type=Path,
        help="the Personalize import files (default: <output>/personalize)",
    )
    parser.add_argument(
        "--batch-input-output",
        type=Path,
        help=f"the Personalize batch input, {BATCH_INPUT_FILE} (default: <output>/batch-input)",
    )
    for kind, default in METADATA_INPUTS.items():
        parser.add_argument(
            f"--{kind}",
            type=Path,
            default=default,
            help=f"{kind} metadata, a file or a folder; read only when the options have {kind!r}",
        )
    parser.add_argument(
        "--options",
        type=Path,
        default=PROCESSING / "input" / "options" / "prep.json",
        help="JSON file of every prep option (python -m recops.contracts CONFIG prep)",
    )
    return parser.parse_args(argv)


def options_from_args(args: argparse.Namespace) -> PrepOptions:
    """The options file, and only it: every option comes from the config through it."""
    if not args.options.is_file():
        raise FileNotFoundError(
            f"no options file at {args.options}: prep has no defaults of its own; write the "
            "file with `python -m recops.contracts CONFIG prep > prep.json` and pass "
            "--options prep.json"
        )
    try:
        raw = json.loads(args.options.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(
            f"options file {args.options} is not JSON ({err}); write it with "
            "`python -m recops.contracts CONFIG prep`"
        ) from None
    return PrepOptions.from_dict(raw)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        options = options_from_args(args)
        run(
            args.input,
            args.output,
            options,
            personalize=args.personalize_output,
            batch_input=args.batch_input_output,
            users=args.users,
            items=args.items,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"prep failed: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
