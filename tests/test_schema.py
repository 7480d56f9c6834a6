"""The schema module: validation names the column and a row, and writes never half-happen."""

from __future__ import annotations

import pandas as pd
import pytest

from nonrecours.core.io import read_table, write_table
from nonrecours.core.schema import (
    ENTITLEMENTS,
    INDIVIDUALS,
    TABLES,
    SchemaError,
    validate,
)


def entitlement_rows(**overrides) -> pd.DataFrame:
    row = {"household_id": 1, "benefit": "rsa", "eligible": True, "monthly_amount": 500.0, "estimated_inputs": "none"}
    row.update(overrides)
    return pd.DataFrame([row, {**row, "household_id": 2}])


def test_every_column_is_documented_with_a_role_and_a_description():
    for table in TABLES.values():
        for col in table.columns:
            assert col.description and col.role, (table.name, col.name)
            typed = col.dtype in {"int8", "int16", "int64", "float64", "bool", "boolean", "category"}
            # the simulator's state keeps its own codes (communes, nationalities, activities) as strings
            assert typed or (col.dtype == "str" and table.name.startswith("world_")), (table.name, col.name)


def test_every_model_input_has_a_french_meaning_for_the_public_notice():
    from nonrecours.core.schema import FEATURES, PROFILES

    missing = [f for f in FEATURES if not PROFILES.column(f).fr]
    assert not missing, f"model inputs without French text (Column.fr): {missing}"
    assert len({PROFILES.column(f).fr for f in FEATURES}) == len(FEATURES)  # no two read the same


def test_protected_attributes_are_declared_protected():
    assert set(INDIVIDUALS.with_role("protected")) == {"sex", "disability_rate", "nationality_group"}


def test_a_valid_table_comes_back_with_declared_dtypes():
    out = validate(entitlement_rows(), ENTITLEMENTS)
    assert str(out["benefit"].dtype) == "category" and out["monthly_amount"].dtype == "float64"


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"monthly_amount": -5.0}, ["monthly_amount", "household_id=1"]),
        ({"benefit": "rmi"}, ["benefit", "'rmi'", "household_id=1"]),
        ({"household_id": 1.5}, ["household_id", "whole number"]),
        ({"monthly_amount": None}, ["monthly_amount", "missing value"]),
    ],
)
def test_a_bad_value_is_reported_with_its_column_and_an_example_row(overrides, words):
    with pytest.raises(SchemaError) as err:
        validate(entitlement_rows(**overrides), ENTITLEMENTS)
    for w in words:
        assert w in str(err.value)


def test_a_missing_column_is_named():
    with pytest.raises(SchemaError, match=r"missing column.*eligible"):
        validate(entitlement_rows().drop(columns="eligible"), ENTITLEMENTS)


def test_a_duplicated_key_is_refused():
    df = entitlement_rows()
    df["household_id"] = 1
    with pytest.raises(SchemaError, match="duplicated key"):
        validate(df, ENTITLEMENTS)


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path):
    write_table(entitlement_rows(), tmp_path, ENTITLEMENTS)
    before = (tmp_path / "entitlements.parquet").read_bytes()
    with pytest.raises(SchemaError):
        write_table(entitlement_rows(monthly_amount=-1.0), tmp_path, ENTITLEMENTS)
    assert (tmp_path / "entitlements.parquet").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["entitlements.parquet"]
    assert len(read_table(tmp_path, ENTITLEMENTS)) == 2


def test_the_committed_data_contract_matches_the_schema_module():
    from pathlib import Path

    from nonrecours.core.schema import to_markdown

    committed = (Path(__file__).resolve().parents[1] / "docs" / "schema.md").read_text()
    assert committed.strip() == to_markdown().strip(), "run: nonrecours schema > docs/schema.md"
