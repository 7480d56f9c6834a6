"""Profile: where the law engine's time goes, for one household and for one partition.

Usage: .venv/bin/python -m bench.profile_law [--households 10000] [--top 15]
Builds the agency's view of one household (the shipped example's working single parent) and of a
generated population of --households (`nonrecours generate`, one quarter, in a temporary folder),
then, in this process and on one core, for each:
- the steps: loading OpenFisca-France, a process's first simulation (one household, measured
  apart: OpenFisca sets up lazily), building the entities, setting the inputs (``set_input``
  calls), computing each of the eight variables the entitlements read (in the order
  :func:`nonrecours.law.openfisca.compute_entitlements` asks them);
- the counts: ``calculate`` calls and formula runs (every variable x period OpenFisca computed);
- a second, traced pass: time per OpenFisca variable, from OpenFisca's own tracer
  (``generate_performance_tables``), summed over periods; the --top variables by their formulas'
  own time.
Writes bench/results/profile_law.json and prints a Markdown summary for the README. The traced
pass is slower than the plain one (the tracer records every call); its shares, not its seconds,
are what to read.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from bench.harness import CLI, HERE, machine

SINGLE_PARENT = 1
"""Index of the working single parent in serving/nonrecours/serving/examples/households.json."""


@contextmanager
def counted(cls, name: str, tally: dict):
    """Wrap ``cls.name`` to count its calls and sum their wall time into ``tally[name]``."""
    original = getattr(cls, name)
    tally[name] = {"calls": 0, "seconds": 0.0}

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            tally[name]["calls"] += 1
            tally[name]["seconds"] += time.perf_counter() - start

    setattr(cls, name, wrapper)
    try:
        yield tally
    finally:
        setattr(cls, name, original)


def situation(individuals: pd.DataFrame, households: pd.DataFrame):
    from nonrecours.law.parameters import load_law_parameters
    from nonrecours.law.situation import observed_situation

    params = load_law_parameters()
    persons, hh, _ = observed_situation(individuals, households, params)
    return persons, hh, params.css


def steps(persons: pd.DataFrame, households: pd.DataFrame, month: str) -> dict:
    """The plain pass: the build split into entities and inputs, each output variable's time, the
    number of calculate calls and formula runs."""
    from openfisca_core.simulations import Simulation

    from nonrecours.law.openfisca import _AMOUNT_VARIABLES, build_simulation

    tally: dict = {}
    with (
        counted(Simulation, "set_input", tally),
        counted(Simulation, "calculate", tally),
        counted(Simulation, "_run_formula", tally),
    ):
        start = time.perf_counter()
        sim, *_ = build_simulation(persons, households, month)
        build = time.perf_counter() - start
        inputs = tally["set_input"]["seconds"]
        outputs = {}
        for variable in (*_AMOUNT_VARIABLES.values(), "cmu_c", "css_participation_forfaitaire", "aah"):
            start = time.perf_counter()
            sim.calculate(variable, month)
            outputs[variable] = round(time.perf_counter() - start, 3)
    return {
        "build_entities_s": round(build - inputs, 3),
        "set_inputs_s": round(inputs, 3),
        "set_input_calls": tally["set_input"]["calls"],
        "compute_s": round(sum(outputs.values()), 3),
        "per_output_variable_s": outputs,
        "calculate_calls": tally["calculate"]["calls"],
        "formula_runs": tally["_run_formula"]["calls"],
    }


def per_variable(persons: pd.DataFrame, households: pd.DataFrame, month: str, top: int) -> list[dict]:
    """The traced pass: OpenFisca's performance table, aggregated over periods."""
    from nonrecours.law.openfisca import _AMOUNT_VARIABLES, build_simulation

    sim, *_ = build_simulation(persons, households, month)
    sim.trace = True
    for variable in (*_AMOUNT_VARIABLES.values(), "cmu_c", "css_participation_forfaitaire", "aah"):
        sim.calculate(variable, month)
    with tempfile.TemporaryDirectory() as tmp:
        sim.tracer.generate_performance_tables(tmp)
        table = pd.read_csv(Path(tmp) / "aggregated_performance_table.csv")
    total = table["formula_time"].sum()
    table["share_of_formula_time"] = table["formula_time"] / total
    table = table.sort_values("formula_time", ascending=False).head(top)
    return [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in table.to_dict("records")
    ]


def population(n: int, folder: Path, month: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    subprocess.run(
        [CLI, "generate", "-n", str(n), "--quarters", "1", "--out", str(folder), "--reference-month", month, "-q"],
        check=True,
    )
    return pd.read_parquet(folder / "individuals.parquet"), pd.read_parquet(folder / "households.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    from nonrecours.core.config import Settings
    from nonrecours.law.openfisca import tax_benefit_system
    from nonrecours.serving.request import Household, example_households, to_tables

    month = Settings().law.reference_month
    start = time.perf_counter()
    tax_benefit_system()
    result: dict = {
        "machine": machine(),
        "reference_month": month,
        "load_openfisca_france_s": round(time.perf_counter() - start, 2),
    }
    individuals, households = to_tables([Household.model_validate(example_households()[SINGLE_PARENT])])
    persons, hh_law, _ = situation(individuals, households)
    start = time.perf_counter()
    steps(
        persons, hh_law, month
    )  # a process's first simulation pays OpenFisca's lazy set-up (parameters, caches): measured apart
    result["first_simulation_in_a_process_s"] = round(time.perf_counter() - start, 2)
    cases = {"one household": (individuals, households)}
    with tempfile.TemporaryDirectory() as tmp:
        cases[f"{args.households:,} households"] = population(args.households, Path(tmp), month)
        for name, (ind, hh) in cases.items():
            persons, hh_law, _ = situation(ind, hh)
            plain = steps(persons, hh_law, month)
            plain["households"] = int(hh_law.shape[0])
            plain["households_per_s"] = round(
                plain["households"] / (plain["build_entities_s"] + plain["set_inputs_s"] + plain["compute_s"]), 1
            )
            plain["top_variables_traced"] = per_variable(persons, hh_law, month, args.top)
            result[name] = plain
            print(
                f"{name}: build {plain['build_entities_s']} s, inputs {plain['set_inputs_s']} s "
                f"({plain['set_input_calls']} calls), "
                f"compute {plain['compute_s']} s; {plain['calculate_calls']:,} calculate calls, "
                f"{plain['formula_runs']:,} formula runs",
                flush=True,
            )
    out = HERE / "results" / "profile_law.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for name in cases:
        print(
            f"\n{name}: top variables by their formulas' own time (traced pass)\n\n| variable | formula s | "
            "share | calls |\n|---|---|---|---|"
        )
        for row in result[name]["top_variables_traced"]:
            print(
                f"| `{row['name']}` | {row['formula_time']:.3f} | {row['share_of_formula_time']:.1%} | "
                f"{row.get('calculation_count', '')} |"
            )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
