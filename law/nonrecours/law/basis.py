"""The legal basis of an entitlement, read from OpenFisca-France itself: for each benefit, the
resources the law counts, the base amount it starts from, the amount it gives, and the texts
its variables cite (``Variable.reference``: Légifrance articles, service-public.fr pages).

Where it sits: beside :mod:`nonrecours.law.openfisca` (the same simulation, the same mapping of an
agency's rows); the agents' web page shows it for each benefit of a household. No rule is written
here: every figure is an OpenFisca-France variable computed for the household, and every text is
the one OpenFisca-France gives. Which variables say what, per benefit, is :data:`BASIS`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nonrecours.law.openfisca import _AMOUNT_VARIABLES, build_simulation, tax_benefit_system

BASIS: dict[str, dict[str, str]] = {
    "rsa": {
        "resources": "rsa_base_ressources",
        "base": "rsa_socle",
        "base_single_parent": "rsa_socle_majore",
        "amount": "rsa",
        "law": "rsa_montant",
        "housing": "rsa_forfait_logement",
        "law_single_parent": "rsa_majore_eligibilite",
    },
    "ppa": {
        "resources": "ppa_base_ressources",
        "base": "ppa_montant_forfaitaire_familial_non_majore",
        "base_single_parent": "ppa_montant_forfaitaire_familial_majore",
        "amount": "ppa",
        "law": "ppa_eligibilite",
        "housing": "ppa_forfait_logement",
    },
    "aide_logement": {
        "resources": "aide_logement_base_ressources",
        "base": "aide_logement_montant_brut",
        "amount": "aide_logement",
    },
    "css_free": {"resources": "css_cmu_base_ressources", "eligibility": "cmu_c"},
    "css_contrib": {"resources": "css_cmu_base_ressources", "base": "css_participation_forfaitaire"},
    "aspa": {"amount": "aspa"},
    "af": {"base": "af_base", "amount": "af"},
    "aah": {"amount": "aah", "law": "aah_eligible"},
}
"""Per benefit, the OpenFisca-France variables the page shows, by what they mean to an agent:
``resources`` (what the law counts), ``base`` (the amount it starts from; ``base_single_parent``
the increased one of an isolated parent, which applies instead where it is not zero), ``amount``
(what it gives), ``housing`` (the housing flat rate deducted), ``eligibility``; ``law*`` are
variables read for their references only."""
SHOWN = ("resources", "base", "base_single_parent", "housing", "amount", "eligibility")
PARAMETERS: dict[str, tuple[str, ...]] = {
    "rsa": ("prestations_sociales.solidarite_insertion.minima_sociaux.rsa.rsa_m.montant_de_base_du_rsa",),
    "ppa": ("prestations_sociales.solidarite_insertion.minima_sociaux.ppa.pa_m.montant_de_base",),
    "aspa": (
        "prestations_sociales.solidarite_insertion.minimum_vieillesse.aspa.montant_maximum_annuel.personnes_seules",
        "prestations_sociales.solidarite_insertion.minimum_vieillesse.aspa.montant_maximum_annuel.couples",
    ),
    "af": ("prestations_sociales.prestations_familiales.bmaf.bmaf",),
    "aah": ("prestations_sociales.prestations_etat_de_sante.invalidite.aah.montant",),
}
"""Per benefit, OpenFisca-France's parameters that set its amounts: the page shows each one's value
in the reference month and the text that set it (the parameter's ``reference`` in force then)."""


def parameter_in_force(path: str, month: str) -> dict:
    """A parameter's description, value on the first of ``month`` and the texts that set it (its
    ``metadata["reference"]`` entry in force then: the latest dated on or before that day)."""
    node = tax_benefit_system().parameters
    for part in path.split("."):
        node = node.children[part]
    day = f"{month}-01"
    dated = node.metadata.get("reference") or {}
    in_force = [v for k, v in sorted(dated.items()) if str(k) <= day][-1:] if isinstance(dated, dict) else [dated]
    texts = [t for v in in_force for t in (v if isinstance(v, list) else [v])]
    return {
        "parameter": path,
        "description": node.description,
        "value": float(node(day)),
        "texts": [
            {"title": str(t.get("title", "")), "href": t.get("href")}
            if isinstance(t, dict)
            else {"title": str(t), "href": None}
            for t in texts
        ],
    }


def references(variable: str) -> list[str]:
    """The texts OpenFisca-France cites for a variable (its ``reference``), as given."""
    ref = tax_benefit_system().variables[variable].reference
    return [ref] if isinstance(ref, str) else list(ref or [])


def legal_basis(persons: pd.DataFrame, households: pd.DataFrame, *, reference_month: str) -> dict[int, dict[str, dict]]:
    """Per household id, per benefit: ``{"figures": [{"role", "variable", "label", "value"}],
    "references": [...], "parameters": [see parameter_in_force]}`` for the situation's households in
    ``reference_month`` (one simulation;
    family-level variables summed over the household's benefit units, person-level ones over its
    members). Pure: the inputs are not modified."""
    tbs = tax_benefit_system()
    sim, persons, households, unit_id = build_simulation(persons, households, reference_month)
    unit_household = pd.Index(pd.unique(unit_id)) // 100
    person_household = persons["household_id"].to_numpy()
    ids = households.index.to_numpy()
    values: dict[str, pd.Series] = {}
    # The amounts first, in the order compute_entitlements asks for them: RSA and housing aid refer
    # to each other and OpenFisca breaks the cycle where it is entered (law/openfisca.py), so
    # another order would give other amounts than the household's entitlements.
    shown = {v for spec in BASIS.values() for role, v in spec.items() if role in SHOWN}
    first = [v for v in (*_AMOUNT_VARIABLES.values(), "cmu_c", "css_participation_forfaitaire", "aah") if v in shown]
    for variable in [*first, *sorted(shown - set(first))]:
        computed = np.asarray(sim.calculate(variable, reference_month), dtype=float)
        owner = person_household if tbs.variables[variable].entity.key == "individu" else unit_household
        values[variable] = pd.Series(computed).groupby(np.asarray(owner)).sum().reindex(ids, fill_value=0.0)
    cited = {b: sorted({r for v in spec.values() for r in references(v)}) for b, spec in BASIS.items()}
    laws = {b: [parameter_in_force(p, reference_month) for p in PARAMETERS.get(b, ())] for b in BASIS}
    out: dict[int, dict[str, dict]] = {}
    for i, hid in enumerate(ids):
        out[int(hid)] = {
            b: {
                "figures": [
                    {
                        "role": role,
                        "variable": v,
                        "label": tbs.variables[v].label,
                        "value": round(float(values[v].iloc[i]), 2),
                    }
                    for role, v in spec.items()
                    if role in SHOWN
                ],
                "references": cited[b],
                "parameters": laws[b],
            }
            for b, spec in BASIS.items()
        }
    return out
