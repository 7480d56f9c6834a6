"""The generator's calibration report: what the synthetic population looks like next to the
published figures it is tuned to (household shares, poverty, non-take-up and its gradients).

Where it sits: computed by :func:`nonrecours.data.generate.generate` and written as ``calibration.json``
beside the tables, printed by ``nonrecours generate``, checked by the calibration tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from nonrecours.core.schema import BENEFITS
from nonrecours.data.calibration import Calibration
from nonrecours.law.parameters import load_law_parameters

# Approximate net-to-gross ratios, used only to estimate the poverty rate of the population (a
# sanity check of the income distribution, not an input to any entitlement).
NET_PAY, NET_PENSION, NET_UNEMPLOYMENT = 0.78, 0.91, 0.93
POVERTY_LINE = 0.6
"""INSEE's monetary poverty line: 60% of the median equivalised income."""
TOLERANCE = 0.04
"""A simulated non-take-up within 4 points of its target counts as calibrated."""
ASPA_AMOUNT_BINS = (100, 200, 500)
"""EUR a month: the bins of DREES n°97's ASPA gradient (calibration.yaml: gradients)."""
DIGITS = 4
"""Shares and rates in the report are rounded to this many digits."""
CASH_BENEFITS = ("rsa", "ppa", "aide_logement", "aspa", "af", "aah")
OTHER_AMOUNT = 0.05
"""A payment more than 5% away from the true amount counts as another amount."""
CLAIM_AUC_BOUND = 0.75
"""Published studies explain little of who claims: the truth's own claim probability should not
predict claims better than this ROC AUC."""


def _ntu(claimed: pd.Series, mask: pd.Series | np.ndarray) -> float | None:
    sel = claimed[np.asarray(mask)]
    return None if len(sel) == 0 else round(float(1 - sel.mean()), DIGITS)


def poverty_rate(true_persons: pd.DataFrame, outcomes: pd.DataFrame) -> float:
    """Share of persons whose household's disposable income per OECD consumption unit is below
    60% of the median (INSEE's monetary poverty line); benefits count only where claimed."""
    hid = true_persons["household_id"]
    market = (
        (
            NET_PAY * true_persons["pay_recent"]
            + NET_PENSION * true_persons["pension_monthly"]
            + NET_UNEMPLOYMENT * true_persons["unemployment_recent"]
        )
        .groupby(hid)
        .sum()
    )
    paid = outcomes[outcomes["benefit"].isin(CASH_BENEFITS) & (outcomes["status"] == "paid")]
    benefits = paid.groupby("household_id")["paid_amount"].sum().reindex(market.index, fill_value=0)
    units = load_law_parameters().equivalence_scale.units(hid, true_persons["age"])
    equivalised = (market + benefits) / units
    persons = true_persons.groupby("household_id").size()
    per_person = np.repeat(equivalised.to_numpy(), persons.reindex(equivalised.index).to_numpy())
    line = POVERTY_LINE * np.median(per_person)
    return round(float((per_person < line).mean()), DIGITS)


def _share(mask: np.ndarray | pd.Series, of: np.ndarray | pd.Series) -> float | None:
    of = np.asarray(of, dtype=bool)
    return round(float(np.asarray(mask, dtype=bool)[of].mean()), DIGITS) if of.any() else None


def claim_auc(outcomes: pd.DataFrame) -> dict[str, float | None]:
    """ROC AUC of the true claim probability for the claims among the eligible, per benefit: the
    best any model on the full truth (every determinant, not the households' own draws) can do.
    ``overall`` is their mean weighted by eligible households (within benefit: pooling benefits
    would credit the truth with knowing that family benefits are claimed more than CSS)."""
    e = outcomes[outcomes["eligible"]]
    out: dict[str, float | None] = {}
    weights = {}
    for b, g in e.groupby("benefit", observed=True):
        y = g["claimed"].to_numpy(dtype=bool)
        out[str(b)] = round(float(roc_auc_score(y, g["p_claim"])), DIGITS) if 0 < y.sum() < len(y) else None
        weights[str(b)] = len(g)
    known = {b: v for b, v in out.items() if v is not None}
    total = sum(weights[b] for b in known)
    out["overall"] = round(sum(v * weights[b] for b, v in known.items()) / total, DIGITS) if total else None
    return out


def overpayments(outcomes: pd.DataFrame) -> dict:
    """Of the households paid, the share no longer entitled (an overpayment, indu), and of the
    entitled ones, the share paid another amount than the true one (more than 5% apart)."""
    paid = outcomes[outcomes["status"] == "paid"]
    rows = {}
    for name, g in [("overall", paid), *((str(b), x) for b, x in paid.groupby("benefit", observed=True))]:
        entitled = g["eligible"].to_numpy(dtype=bool)
        wrong = (g["paid_amount"] - g["monthly_amount"]).abs().to_numpy() > OTHER_AMOUNT * g[
            "monthly_amount"
        ].to_numpy()
        rows[name] = {
            "paid": len(g),
            "not_entitled_share": _share(~entitled, np.ones(len(g), dtype=bool)),
            "other_amount_share": _share(wrong, entitled),
        }
    counts = outcomes["status"].astype("object").value_counts()
    return {
        "by_benefit": rows,
        "pending": int(counts.get("pending", 0)),
        "refused": int(counts.get("refused", 0)),
        "published": None,
        "note": "no published share of paid households no longer entitled: simulated, not calibrated (assumption)",
    }


def agreement(agency: pd.DataFrame, outcomes: pd.DataFrame) -> dict[str, dict]:
    """Per benefit: how often the law engine on the agency's extract agrees with true eligibility."""
    both = agency.merge(
        outcomes[["household_id", "benefit", "eligible"]],
        on=["household_id", "benefit"],
        suffixes=("_observed", "_true"),
        validate="1:1",
    )
    out = {}
    for b, g in both.groupby("benefit", observed=True):
        o, t = g["eligible_observed"].to_numpy(dtype=bool), g["eligible_true"].to_numpy(dtype=bool)
        out[str(b)] = {
            "agreement": round(float((o == t).mean()), DIGITS),
            "missed": int((t & ~o).sum()),
            "spurious": int((o & ~t).sum()),
            "estimated_share": round(float((g["estimated_inputs"].astype("object") != "none").mean()), DIGITS),
        }
    return out


def outreach_effects(outcomes: pd.DataFrame, cal: Calibration) -> dict:
    """Among eligible households that do not claim: claims by next quarter with no contact, with a
    contact, the difference, and the share a contact reaches; beside the published trials."""
    open_ = outcomes[outcomes["eligible"] & ~outcomes["claimed"]]
    no, yes = open_["claim_if_not_contacted"].mean(), open_["claim_if_contacted"].mean()
    b = cal.outreach_benchmarks
    return {
        "households": len(open_),
        "claim_without_contact": round(float(no), DIGITS) if len(open_) else None,
        "claim_if_contacted": round(float(yes), DIGITS) if len(open_) else None,
        "effect_points": round(float(100 * (yes - no)), 2) if len(open_) else None,
        "reached_share": round(float(open_["reached_if_contacted"].mean()), DIGITS) if len(open_) else None,
        "published": {
            "benefits_data_trust": {
                k: b["benefits_data_trust"][k] for k in ("no_outreach", "letter", "letter_and_help")
            },
            "caf_gironde_claimed_after_contact": b["caf_gironde_2017"]["claimed_after_contact"],
            "rendez_vous_des_droits": {
                "effect_points": b["rendez_vous_des_droits"]["effect_points"],
                "attended": b["rendez_vous_des_droits"]["invited_attended"],
            },
        },
        "sources": {k: v["source"] for k, v in b.items()},
    }


def reasons(outcomes: pd.DataFrame, cal: Calibration) -> dict:
    """Why eligible households do not claim, against the main reason DREES's 2021 survey found."""
    open_ = outcomes[outcomes["eligible"] & ~outcomes["claimed"]]
    shares = open_["nonclaim_reason"].astype("object").value_counts(normalize=True)
    return {
        "simulated": {
            r: round(float(shares.get(r, 0.0)), DIGITS)
            for r in ("information", "complexity", "fear", "refusal", "transitory")
        },
        "published": dict(cal.stated_reasons),
    }


def calibration_summary(
    *,
    outcomes: pd.DataFrame,
    agency: pd.DataFrame,
    households: pd.DataFrame,
    true_persons: pd.DataFrame,
    drivers: pd.DataFrame,
    hh: pd.DataFrame,
    cal: Calibration,
    n_households: int,
    seed: int,
    reference_month: str,
    quarter: int,
) -> dict:
    true_type = drivers["true_type"]
    eligible = outcomes[outcomes["eligible"]].copy()
    by_b = {b: g.set_index("household_id") for b, g in eligible.groupby("benefit", observed=True)}
    claimed_any = outcomes[outcomes["claimed"]].groupby("benefit", observed=True)["household_id"].apply(set).to_dict()

    benefits = {}
    for b in BENEFITS:
        g = by_b.get(b)
        ntu = None if g is None or g.empty else round(float(1 - g["claimed"].mean()), DIGITS)
        benefits[b] = {
            "eligible_households": 0 if g is None else len(g),
            "eligible_share": round(0 if g is None else len(g) / n_households, DIGITS),
            "mean_monthly_amount": None if g is None or g.empty else round(float(g["monthly_amount"].mean()), 2),
            "ntu": ntu,
            "ntu_target": cal.ntu[b],
            "within_4_points": None if ntu is None else abs(ntu - cal.ntu[b]) <= TOLERANCE,
            "target_is_assumption": cal.ntu_is_assumption[b],
            "source": cal.ntu_source[b],
        }

    gradients: dict[str, dict[str, float | None]] = {}
    rsa = by_b.get("rsa")
    if rsa is not None and not rsa.empty:
        c = rsa["claimed"]
        has_al = rsa.index.isin(list(claimed_any.get("aide_logement", set())))
        has_af = rsa.index.isin(list(claimed_any.get("af", set())))
        d = drivers.reindex(rsa.index)
        ttype = true_type.reindex(rsa.index)
        gradients["rsa_housing_aid"] = {"with": _ntu(c, has_al), "without": _ntu(c, ~has_al)}
        gradients["rsa_family_benefits"] = {"with": _ntu(c, has_af), "without": _ntu(c, ~has_af)}
        gradients["rsa_tenure"] = {t: _ntu(c, d["tenure"] == t) for t in ("social_renter", "private_renter", "owner")}
        gradients["rsa_household_type"] = {
            "couple_no_child": _ntu(c, ttype == "couple_no_child"),
            "single_mother": _ntu(c, d["single_mother"].astype(bool)),
        }
        gradients["rsa_age"] = {
            "25_29": _ntu(c, d["age_25_29"].astype(bool)),
            "other": _ntu(c, ~d["age_25_29"].astype(bool)),
        }
        gradients["rsa_education"] = {
            "higher": _ntu(c, d["higher_education"].astype(bool)),
            "other": _ntu(c, ~d["higher_education"].astype(bool)),
        }
        gradients["rsa_territory"] = {
            t: _ntu(c, d["territory_type"] == t) for t in ("paris_agglo", "large_urban", "small_urban", "rural")
        }
        gradients["rsa_digital_exclusion"] = {
            "excluded": _ntu(c, d["digital_exclusion"].astype(bool)),
            "other": _ntu(c, ~d["digital_exclusion"].astype(bool)),
        }
        gradients["rsa_recent_event"] = {
            "event": _ntu(c, d["recent_event"].astype(bool)),
            "none": _ntu(c, ~d["recent_event"].astype(bool)),
        }
    aspa = by_b.get("aspa")
    if aspa is not None and not aspa.empty:
        low, mid, high = ASPA_AMOUNT_BINS
        c = aspa["claimed"]
        amt = aspa["monthly_amount"]
        d = drivers.reindex(aspa.index)
        gradients["aspa_amount"] = {
            f"<{low}": _ntu(c, amt < low),
            f"{low}-{mid}": _ntu(c, (amt >= low) & (amt < mid)),
            f"{mid}-{high}": _ntu(c, (amt >= mid) & (amt < high)),
            f">={high}": _ntu(c, amt >= high),
        }
        gradients["aspa_tenure"] = {
            "renter": _ntu(c, d["tenure"].isin(["social_renter", "private_renter"])),
            "owner": _ntu(c, d["tenure"] == "owner"),
        }
        gradients["aspa_sex"] = {
            "women": _ntu(c, d["head_female"].astype(bool)),
            "men": _ntu(c, ~d["head_female"].astype(bool)),
        }

    shares = households["household_type"].astype("object").value_counts(normalize=True)
    return {
        "seed": seed,
        "reference_month": reference_month,
        "quarter": quarter,
        "households": n_households,
        "persons_observed": int(households["n_persons"].sum()),
        "persons_true": len(true_persons),
        "household_type_share": {t: round(float(shares.get(t, 0.0)), DIGITS) for t in cal.household_type_share},
        "household_type_share_target": dict(cal.household_type_share),
        "tenure_share": {k: round(float(v), DIGITS) for k, v in hh["tenure"].value_counts(normalize=True).items()},
        "poverty_rate": poverty_rate(true_persons, outcomes),
        "poverty_rate_target": cal.poverty_rate,
        "recent_event_share": round(float(hh["recent_event"].mean()), DIGITS),
        "benefits": benefits,
        "gradients": gradients,
        "aspa_published": dict(cal.gradients["aspa_ntu_by_monthly_amount"]),
        "claim_auc": claim_auc(outcomes),
        "claim_auc_bound": CLAIM_AUC_BOUND,
        "overpayments": overpayments(outcomes),
        "agreement": agreement(agency, outcomes),
        "outreach": outreach_effects(outcomes, cal),
        "reasons": reasons(outcomes, cal),
        "assumptions": [
            *sorted(b for b, a in cal.ntu_is_assumption.items() if a),
            "claim_model",
            "outreach",
            "overpayments",
            "css_cover_value",
            "rent_estimate",
            "territory_share",
            "population_shapes",
        ],
    }


def calibration_tables(summary: dict) -> dict[str, pd.DataFrame]:
    """The calibration report as tables for people (printed by ``nonrecours generate``), by title:
    each simulated figure beside the published one, and ``assumption`` where none is published."""
    agree, over, auc = summary["agreement"], summary["overpayments"]["by_benefit"], summary["claim_auc"]
    rows = []
    for b, v in summary["benefits"].items():
        rows.append(
            {
                "benefit": b,
                "eligible": f"{v['eligible_households']:,} ({v['eligible_share']:.1%})",
                "non-take-up": v["ntu"],
                "published": f"{v['ntu_target']:.2f}" + (" (assumption)" if v["target_is_assumption"] else ""),
                "truth claim AUC": auc.get(b),
                "observed = true eligibility": agree.get(b, {}).get("agreement"),
                "paid, no longer entitled": over.get(b, {}).get("not_entitled_share"),
                "paid another amount": over.get(b, {}).get("other_amount_share"),
            }
        )
    ntu = pd.DataFrame(rows)
    published = summary.get("aspa_published", {})
    aspa = pd.DataFrame(
        [
            {"monthly amount": k, "non-take-up": v, "published (DREES n°97)": published.get(k, "-")}
            for k, v in summary["gradients"].get("aspa_amount", {}).items()
        ]
    )
    o = summary["outreach"]
    p = o["published"]
    outreach = pd.DataFrame(
        [
            {
                "eligible, not claiming": "claims by next quarter, no contact",
                "simulated": o["claim_without_contact"],
                "published": f"{p['benefits_data_trust']['no_outreach']:.2f} (Benefits Data Trust, no outreach)",
            },
            {
                "eligible, not claiming": "claims by next quarter, contacted",
                "simulated": o["claim_if_contacted"],
                "published": f"{p['caf_gironde_claimed_after_contact']:.2f} (CAF Gironde); "
                f"{p['benefits_data_trust']['letter']:.2f} letter, "
                f"{p['benefits_data_trust']['letter_and_help']:.2f} letter and help (BDT)",
            },
            {
                "eligible, not claiming": "effect of a contact (points)",
                "simulated": o["effect_points"],
                "published": f"{p['rendez_vous_des_droits']['effect_points']} (Rendez-vous des droits)",
            },
            {
                "eligible, not claiming": "reached by a contact",
                "simulated": o["reached_share"],
                "published": f"{p['rendez_vous_des_droits']['attended']:.2f} attended (Rendez-vous des droits)",
            },
        ]
    )
    r = summary["reasons"]
    reasons_ = pd.DataFrame(
        [
            {"first barrier failed": k, "simulated": v, "stated (DREES 2021)": r["published"].get(k, "-")}
            for k, v in r["simulated"].items()
        ]
    )
    return {
        f"Non-take-up and the agency's file, {summary['reference_month']} ({summary['households']:,} "
        f"households, seed {summary['seed']})": ntu,
        "ASPA non-take-up by monthly amount": aspa,
        f"Response to outreach ({o['households']:,} eligible households not claiming)": outreach,
        "Why eligible households do not claim": reasons_,
    }
