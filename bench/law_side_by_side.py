"""Benchmark: `entitlements` beside plain OpenFisca-France use, on the same households, in one run.

Usage: .venv/bin/python -m bench.law_side_by_side [--households 20000] [--dict-households 2000]
Draws --households (`nonrecours generate`, one quarter, in a temporary folder) and maps the
agency's view onto OpenFisca's inputs (:func:`nonrecours.law.situation.observed_situation`,
:func:`nonrecours.law.openfisca.build_simulation`). Then, in this one run, the eight variables
the entitlements read (in the order :func:`nonrecours.law.openfisca.compute_entitlements` asks
them: housing aid first) are computed:
- plain, one process: one OpenFisca-France simulation of all the households, inputs set as
  arrays (``set_input``), in this process;
- plain, from a situation dict: the same inputs written as the JSON-like situation of
  OpenFisca's documentation, built with ``SimulationBuilder.build_from_entities`` in this process
  (on the first --dict-households only: parsing a dict value by value is slow);
- ours: ``entitlements_from_observed`` with the default law settings (partitions of
  ``law.partition_size`` over ``law.workers`` local processes), from the agency's tables;
and checks that the dict-built simulation and ``entitlements`` give the same amounts to the cent.
Writes bench/results/side_by_side.json and prints a Markdown table for the README. Writing the
dict is not timed (a plain user has one); building it into a simulation is.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.harness import HERE, machine
from bench.profile_law import population, situation

OUTPUTS = ("aide_logement", "rsa", "ppa", "aspa", "af", "cmu_c", "css_participation_forfaitaire", "aah")
"""The variables the entitlements read, in the order they are asked (see the module docstring)."""


def _plain(value, variable) -> object:
    if variable.value_type.__name__ == "Enum":
        return value
    if isinstance(value, np.datetime64):
        return str(value.astype("datetime64[D]"))
    return value.item() if hasattr(value, "item") else value


def situation_dict(sim) -> dict:
    """Every input of a built simulation as an OpenFisca situation dict: entities by plural, each
    instance with its members by role and its variables by period."""
    out: dict = {}
    persons = sim.persons
    person_ids = [str(i) for i in persons.ids]
    for group in sim.populations.values():
        entity = group.entity
        instances: dict = {str(i): {} for i in group.ids}
        names = list(instances)
        for name, holder in group._holders.items():
            variable = holder.variable
            for period in holder.get_known_periods():
                values = holder.get_array(period)
                if variable.value_type.__name__ == "Enum":
                    values = values.decode_to_str()
                for instance, value in zip(names, values):
                    instances[instance].setdefault(name, {})[str(period)] = _plain(value, variable)
        if not entity.is_person:
            ranks = {r: k for k, r in enumerate(entity.flattened_roles)}
            members = sorted(
                zip(group.members_entity_id, group.members_role, person_ids), key=lambda m: (m[0], ranks[m[1]])
            )
            top = {sub: role for role in entity.roles for sub in (role.subroles or [role])}
            for index, role, person in members:
                group = top[role]
                instances[names[index]].setdefault(group.plural or group.key, []).append(person)
        out[entity.plural] = instances
    return out


def one_process(persons: pd.DataFrame, households: pd.DataFrame, month: str) -> float:
    """Seconds for one simulation of every household in this process, inputs set as arrays."""
    from nonrecours.law.openfisca import build_simulation

    start = time.perf_counter()
    sim, *_ = build_simulation(persons, households, month)
    for v in OUTPUTS:
        sim.calculate(v, month)
    return time.perf_counter() - start


def plain_run(situation: dict, month: str) -> tuple[dict, float, float]:
    from openfisca_core.simulation_builder import SimulationBuilder

    from nonrecours.law.openfisca import tax_benefit_system

    start = time.perf_counter()
    sim = SimulationBuilder().build_from_entities(tax_benefit_system(), situation)
    built = time.perf_counter() - start
    values = {v: sim.calculate(v, month) for v in OUTPUTS}
    return values, built, time.perf_counter() - start - built


def per_household(values: dict, sim_ids: dict) -> pd.DataFrame:
    """Plain run's amounts summed per household (families' and persons' alike), in EUR."""
    frames = {
        v: pd.Series(values[v], index=sim_ids["famille" if v != "aah" else "individu"])
        for v in OUTPUTS
        if v not in ("cmu_c", "css_participation_forfaitaire")
    }
    return pd.DataFrame({v: s.groupby(s.index).sum() for v, s in frames.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--dict-households", type=int, default=2_000)
    args = parser.parse_args()

    from nonrecours.core.config import Settings
    from nonrecours.law.openfisca import build_simulation, tax_benefit_system
    from nonrecours.law.situation import entitlements_from_observed

    settings = Settings()
    month = settings.law.reference_month
    tax_benefit_system()
    with tempfile.TemporaryDirectory() as tmp:
        individuals, households = population(args.households, Path(tmp), month)
    persons, hh_law, _ = situation(individuals, households)
    first = hh_law["household_id"].iloc[:1]
    one_process(
        persons[persons["household_id"].isin(first)], hh_law[hh_law["household_id"].isin(first)], month
    )  # a process's first simulation sets OpenFisca up
    one_s = one_process(persons, hh_law, month)
    start = time.perf_counter()
    ours = entitlements_from_observed(individuals, households, law=settings.law, quiet=True)
    ours_s = time.perf_counter() - start

    subset = hh_law["household_id"].iloc[: args.dict_households]
    persons, hh_law = persons[persons["household_id"].isin(subset)], hh_law[hh_law["household_id"].isin(subset)]
    sim, persons_sorted, _, unit_id = build_simulation(persons, hh_law, month)
    situation_json = situation_dict(sim)
    # the households each group instance belongs to, for summing the plain run's amounts
    sim_ids = {"famille": np.asarray(pd.unique(unit_id)) // 100, "individu": persons_sorted["household_id"].to_numpy()}
    del sim

    values, built, computed = plain_run(situation_json, month)

    plain_amounts = (
        per_household(values, sim_ids).astype(float).round(2)
    )  # summed in OpenFisca's float32, rounded in float64, as the entitlements are
    ours_amounts = ours.pivot(index="household_id", columns="benefit", values="monthly_amount").reindex(
        plain_amounts.index
    )
    differ = {
        b: int((np.abs(plain_amounts[b] - ours_amounts[b].astype(float)) > 0.005).sum()) for b in plain_amounts.columns
    }
    n, n_dict = len(individuals["household_id"].unique()), len(hh_law)
    dict_s = built + computed
    result = {
        "machine": machine(),
        "households": n,
        "plain_one_process": {"seconds": round(one_s, 2), "households_per_s": round(n / one_s, 1)},
        "plain_from_dict": {
            "households": n_dict,
            "build_s": round(built, 2),
            "compute_s": round(computed, 2),
            "households_per_s": round(n_dict / dict_s, 1),
        },
        "entitlements": {
            "seconds": round(ours_s, 2),
            "households_per_s": round(n / ours_s, 1),
            "workers": settings.law.workers,
            "partition_size": settings.law.partition_size,
        },
        "entitlements_over_one_process": round(one_s / ours_s, 2),
        "households_differing_over_a_cent": differ,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "side_by_side.json").write_text(json.dumps(result, indent=2))
    print(f"machine: {machine()}\n")
    print("| run | households | wall time | households/s |\n|---|---|---|---|")
    print(
        f"| plain OpenFisca-France, one simulation in one process, inputs as arrays | {n:,} | {one_s:.1f} s | "
        f"{n / one_s:,.0f} |"
    )
    print(f"| plain OpenFisca-France from a situation dict: `build_from_entities` | {n_dict:,} | {built:.1f} s | |")
    print(f"| plain OpenFisca-France from a situation dict: the eight variables | {n_dict:,} | {computed:.1f} s | |")
    print(
        f"| plain OpenFisca-France from a situation dict, in all | {n_dict:,} | {dict_s:.1f} s | "
        f"{n_dict / dict_s:,.0f} |"
    )
    print(
        f"| `entitlements` ({settings.law.workers} workers, partitions of {settings.law.partition_size:,}) | "
        f"{n:,} | {ours_s:.1f} s | {n / ours_s:,.0f} |"
    )
    print(
        f"\n`entitlements` / one process: {one_s / ours_s:.2f}x; households whose amounts differ by more than a cent "
        f"between the dict-built simulation and `entitlements`: {differ}"
    )


if __name__ == "__main__":
    main()
