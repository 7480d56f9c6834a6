"""Reading and writing the project's tables: Parquet, validated against the schema, and written
atomically (to a temporary name in the same folder, then renamed) so a crash never leaves half a
file where a good one was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from nonrecours.schema import SchemaError, Table, validate


def write_table(df: pd.DataFrame, folder: Path, table: Table) -> Path:
    """Validate ``df`` against ``table`` and write ``folder/<table>.parquet`` atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    checked = validate(df, table)
    target = folder / f"{table.name}.parquet"
    fd, tmp = tempfile.mkstemp(prefix=f".{table.name}.", suffix=".parquet.tmp", dir=folder)
    os.close(fd)
    try:
        checked.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
