"""The model on a population large enough for per-benefit claims (slow tier): directions taken from
the published gradients, and the model against the rules baseline benefit by benefit."""

from __future__ import annotations

import pytest

from nonrecours.core.config import FairnessConfig, LawConfig, Settings, TrainingConfig
from nonrecours.data.generate import generate
from nonrecours.features.profiles import build_profiles
from nonrecours.features.situation import entitlements_from_observed
from nonrecours.law.parameters import load_law_parameters
from nonrecours.training.evaluate import metric, train_and_evaluate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def medium(calibration):
    settings = Settings(law=LawConfig(workers=2))
    pop = generate(30_000, 99, settings, calibration, quiet=True)
    ent = entitlements_from_observed(pop.individuals, pop.households, law=settings.law, css=load_law_parameters().css, quiet=True)
    profiles = build_profiles(pop.individuals, pop.households, ent)
    return train_and_evaluate(profiles, pop.outcomes, TrainingConfig(), min_group_positives=30)


def test_directions_follow_the_published_gradients(medium):
    """Where the agency cannot see receipt (CSS, ASPA), the probability of non-take-up follows the
    published determinants: higher for owners than renters (ASPA, DREES n°97), lower for RSA
    recipients (CSS comes almost automatically with RSA), higher with digital exclusion.

    (Where receipt is seen, as for RSA at a CAF, not receiving it already says the household does
    not claim; the model rightly ignores tenure there, so that is not where to look.)"""
    t = medium.test
    p = medium.scorer.predict
    aspa = t[(t["benefit"] == "aspa") & t["law_eligible"]]
    css = t[(t["benefit"] == "css_free") & t["law_eligible"]]
    assert len(aspa) >= 20 and len(css) >= 20
    # Tenure comes with its rent: an owner pays none.
    owner = aspa.assign(tenure="owner", rent_monthly=0.0, rent_burden=0.0)
    renter = aspa.assign(tenure="private_renter", rent_monthly=400.0, rent_burden=0.4)
    assert p(owner).mean() > p(renter).mean()
    assert p(css.assign(receives_rsa=0.0)).mean() > p(css.assign(receives_rsa=1.0)).mean()
    assert p(css.assign(digital_exclusion=True)).mean() > p(css.assign(digital_exclusion=False)).mean()


def test_the_model_beats_the_rules_for_every_benefit_with_enough_positives(medium):
    """AUC strictly; euros at k within 1%: where the agency sees receipt (PPA, RSA), not
    receiving an entitlement found on observed data is nearly the whole signal, and the rules rank
    those rows by the same amount the model multiplies by (measured: PPA 20,650 vs 20,687 EUR)."""
    checked = 0
    for benefit in ("rsa", "ppa", "aide_logement", "css_free", "css_contrib", "aspa", "af", "aah"):
        if metric(medium.metrics, "model", "positives", benefit=benefit) < FairnessConfig().min_group_positives:
            continue
        checked += 1
        model_auc, rules_auc = (metric(medium.metrics, m, "roc_auc", benefit=benefit) for m in ("model", "rules"))
        # Where the rules are already perfect (housing aid: AUC 0.99997 measured), none can beat them.
        assert model_auc > rules_auc or min(model_auc, rules_auc) > 0.999, (benefit, model_auc, rules_auc)
        assert metric(medium.metrics, "model", "euros_at_k", benefit=benefit) >= 0.99 * metric(medium.metrics, "rules", "euros_at_k", benefit=benefit), benefit
    assert checked >= 4
