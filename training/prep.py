"""The training-data preparation job: `python -m training.prep`.

Runs unchanged inside the SageMaker scikit-learn processing container (defaults are the
/opt/ml/processing paths) and on a laptop (`--input`, `--output`, `--options` override them).
Options arrive as a plain JSON file holding every option, written from the pipeline config by
`recops.contracts.prep_options` (`python -m recops.contracts CONFIG prep > prep.json`); no
pydantic here, and no defaults: a missing or unknown option fails the job before it reads data.

Outputs under --output:
  fm/train/*.recordio, fm/test/*.recordio    Factorization Machines channels (RecordIO-protobuf)
  personalize/interactions.csv (+ .schema.json, users/items when given)   training part only
  evaluation/holdout.csv                      the held-out interactions, original ids
  maps/users.csv, maps/items.csv              index -> original id
  manifest.json                               counts, density, and what was dropped and why
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from training import recordio
from training.features import (
    Examples,
    binary_target,
    implicit_target,
    one_hot,
    regression_target,
)
from training.interactions import (
    Dropped,
    Indexed,
    days_since_first,
    deduplicate,
    filter_long_tail,
    index_ids,
    input_files,
    read_interactions,
)
from training.personalize_files import write_interactions, write_metadata
from training.split import leave_last_out, temporal_holdout

PROCESSING = Path("/opt/ml/processing")


@dataclass
class MetadataOptions:
    path: str
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
    train_examples: Examples
    test_examples: Examples
    feature_dim: int
    dropped: Dropped


def log(message: str) -> None:
    print(f"[prep {time.strftime('%H:%M:%S')}] {message}", flush=True)


def prepare(raw: pd.DataFrame, options: PrepOptions, dropped: Dropped) -> Prepared:
    """Clean, filter, index, split and label: every step on whole arrays."""
    indexed = deduplicate(index_ids(raw), dropped)
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
    train = _examples(frame, ~is_holdout, extra, indexed.n_items, options, seed=options.seed)
    test = _examples(frame, is_holdout, extra, indexed.n_items, options, seed=options.seed + 1)
    feature_dim = indexed.n_users + indexed.n_items + (1 if extra is not None else 0)
    return Prepared(indexed, is_holdout, train, test, feature_dim, dropped)


def _examples(frame, mask, extra, n_items, options: PrepOptions, seed: int) -> Examples:
    user = frame["user"].to_numpy()[mask]
    item = frame["item"].to_numpy()[mask]
    part_extra = None if extra is None else extra[mask]
    if options.target == "implicit":
        return implicit_target(
            user, item, n_items, options.negatives_per_positive, seed=seed, extra=part_extra
        )
    rating = frame["EVENT_VALUE"].to_numpy()[mask]
    if options.target == "binary":
        return binary_target(user, item, rating, options.rating_threshold, part_extra)
    return regression_target(user, item, rating, part_extra)


def write_outputs(prepared: Prepared, output: Path, options: PrepOptions) -> dict:
    indexed = prepared.indexed
    frame = indexed.frame
    shards = {}
    for channel, examples in (("train", prepared.train_examples), ("test", prepared.test_examples)):
        matrix = one_hot(examples, indexed.n_users, indexed.n_items)
        paths = recordio.write_shards(
            output / "fm" / channel,
            channel,
            matrix,
            examples.label,
            records_per_shard=options.shard_records,
        )
        shards[channel] = [str(p.relative_to(output)) for p in paths]
        log(f"fm/{channel}: {matrix.shape[0]:,} records in {len(paths)} shard(s)")
    train_part = frame[~prepared.is_holdout]
    schema = write_interactions(train_part, output / "personalize")
    evaluation = output / "evaluation"
    evaluation.mkdir(parents=True, exist_ok=True)
    holdout_columns = [c for c in ("USER_ID", "ITEM_ID", "TIMESTAMP") if c in frame]
    frame.loc[prepared.is_holdout, holdout_columns].to_csv(evaluation / "holdout.csv", index=False)
    maps = output / "maps"
    maps.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"USER_ID": indexed.user_ids}).to_csv(maps / "users.csv", index_label="index")
    pd.DataFrame({"ITEM_ID": indexed.item_ids}).to_csv(maps / "items.csv", index_label="index")
    n_train = int((~prepared.is_holdout).sum())
    return {
        "rows": {"clean": len(frame), "train": n_train, "holdout": len(frame) - n_train},
        "users": indexed.n_users,
        "items": indexed.n_items,
        "density": len(frame) / (indexed.n_users * indexed.n_items),
        "dropped": prepared.dropped.as_dict(),
        "fm": {
            "feature_dim": prepared.feature_dim,
            "target": options.target,
            "train_records": len(prepared.train_examples.label),
            "test_records": len(prepared.test_examples.label),
            "negatives_dropped": prepared.train_examples.negatives_dropped
            + prepared.test_examples.negatives_dropped,
            "shards": shards,
        },
        "personalize": {"interactions": n_train, "schema": schema},
        "options": _jsonable(asdict(options)),
    }


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def run(input_path: Path, output: Path, options: PrepOptions) -> dict:
    started = time.perf_counter()
    dropped = Dropped()
    files = input_files(input_path, options.format)
    log(f"reading {len(files)} {options.format} file(s) from {input_path}")
    raw = read_interactions(files, options.format, options.columns, options.timestamp_unit, dropped)
    rows_read = len(raw) + sum(v for k, v in dropped.counts.items())
    log(f"{len(raw):,} interactions read; skipped so far: {dropped.as_dict() or 'none'}")
    prepared = prepare(raw, options, dropped)
    log(
        f"{len(prepared.indexed.frame):,} interactions kept: {prepared.indexed.n_users:,} users, "
        f"{prepared.indexed.n_items:,} items; holdout {int(prepared.is_holdout.sum()):,}"
    )
    manifest = write_outputs(prepared, output, options)
    manifest["input"] = {"files": [str(f) for f in files], "rows_read": rows_read}
    manifest["metadata"] = _write_metadata(input_path, output, options)
    manifest["seconds"] = round(time.perf_counter() - started, 3)
    (output / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log(f"done in {manifest['seconds']} s; dropped: {manifest['dropped'] or 'nothing'}")
    return manifest


def _write_metadata(input_path: Path, output: Path, options: PrepOptions) -> dict:
    written = {}
    base = input_path if input_path.is_dir() else input_path.parent
    for kind in ("users", "items"):
        spec: MetadataOptions | None = getattr(options, kind)
        if spec is None:
            continue
        files = input_files(base / spec.path, spec.format)
        reader = pd.read_parquet if spec.format == "parquet" else pd.read_csv
        sep = {"sep": "\t"} if spec.format == "tsv" else {}
        frame = pd.concat([reader(f, **sep) for f in files], ignore_index=True)
        written[kind] = write_metadata(
            frame,
            output / "personalize",
            kind=kind,
            id_column=spec.id_column,
            categorical=spec.categorical,
            numerical=spec.numerical,
        )
    return written


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.prep", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--input", type=Path, default=PROCESSING / "input" / "interactions")
    parser.add_argument("--output", type=Path, default=PROCESSING / "output")
    parser.add_argument(
        "--options",
        type=Path,
        default=PROCESSING / "input" / "options" / "prep.json",
        help="JSON file of every prep option (python -m recops.contracts CONFIG prep)",
    )
    return parser.parse_args(argv)


def options_from_args(args: argparse.Namespace) -> PrepOptions:
    """The options file, and only it: every option comes from the config through it."""
    if not args.options.exists():
        raise FileNotFoundError(f"no options file at {args.options}")
    return PrepOptions.from_dict(json.loads(args.options.read_text()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        options = options_from_args(args)
        run(args.input, args.output, options)
    except (ValueError, FileNotFoundError) as err:
        print(f"prep failed: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
