"""Reading and writing the project's tables: Parquet, validated against the schema, and written
atomically (to a temporary name in the same folder, then renamed) so a crash never leaves half a
file where a good one was.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from nonrecours.core.errors import UserError
from nonrecours.core.schema import HOUSEHOLDS, INDIVIDUALS, SchemaError, Table, validate

READABLE = 0o644
"""Mode of files written: readable by all, writable by the owner."""
PRIVATE = 0o600
"""Mode of files that hold raw household ids or secrets (worklists, campaigns, secrets files): the owner's only."""


@contextmanager
def atomic_path(path: Path, mode: int = READABLE) -> Iterator[Path]:
    """A temporary name in ``path``'s folder to write to; renamed onto ``path`` (readable with
    ``mode``) when the block ends, removed if it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str, mode: int = READABLE) -> Path:
    """Write ``text`` to ``path`` atomically (readable with ``mode``)."""
    with atomic_path(path, mode) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_table(df: pd.DataFrame, folder: Path, table: Table) -> Path:
    """Validate ``df`` against ``table`` and write ``folder/<table>.parquet`` atomically."""
    checked = validate(df, table)
    target = Path(folder) / f"{table.name}.parquet"
    with atomic_path(target) as tmp:
        checked.to_parquet(tmp, index=False)
    return target


def read_table(folder: Path, table: Table) -> pd.DataFrame:
    """Read ``folder/<table>.parquet`` and validate it; errors name the file, column and a row."""
    path = Path(folder) / f"{table.name}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: expected the {table.name} table there")
    try:
        return validate(pd.read_parquet(path), table)
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from None


def read_tables(folder: Path, *tables: Table, hint: str = "") -> list[pd.DataFrame]:
    """The tables of ``folder``, validated; a missing or invalid one is a :class:`UserError`
    (``hint``: what to run to make a missing one)."""
    try:
        return [read_table(folder, t) for t in tables]
    except FileNotFoundError as exc:
        raise UserError(f"{exc}{hint}") from None


def read_extract(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The raw tables of an agency's extract: individuals and households."""
    individuals, households = read_tables(folder, INDIVIDUALS, HOUSEHOLDS)
    return individuals, households


def check_members(individuals: pd.DataFrame, households: pd.DataFrame, folder: Path) -> None:
    """Every person of ``folder``'s extract belongs to one of its households; else a :class:`UserError`
    naming the first who does not."""
    orphans = ~individuals["household_id"].isin(households["household_id"])
    if orphans.any():
        row = individuals[orphans].iloc[0]
        raise UserError(
            f"{Path(folder) / 'individuals.parquet'}: household_id {row['household_id']} (person_id "
            f"{row['person_id']}) "
            "is not in households.parquet"
        )


def write_json(obj: dict, path: Path) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=str))


FRAME_SUFFIXES = (".csv", ".parquet")


def frame_path(out: Path) -> Path:
    """``out``, checked to be a file a worklist or a campaign can be written to (CSV or Parquet)."""
    if out.suffix not in FRAME_SUFFIXES:
        raise UserError(f"--out {out}: the worklist must end in .csv or .parquet")
    return out


def write_frame(table: pd.DataFrame, out: Path) -> Path:
    """A worklist or a campaign, CSV or Parquet by extension, written to a temporary name then
    renamed, readable by its owner only (it holds raw household ids)."""
    with atomic_path(frame_path(out), PRIVATE) as tmp:
        if out.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    return out
