"""Reading and writing the project's tables: Parquet, validated against the schema, and written
atomically (to a temporary name in the same folder, then renamed) so a crash never leaves half a
file where a good one was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from nonrecours.core.schema import SchemaError, Table, validate

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
