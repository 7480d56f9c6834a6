"""Typed access to ``data/calibration.yaml``: the published figures the generator is tuned to.

Where it sits: read by the generator (shares, non-take-up targets, claim-model effects) and by the
law engine's CSS valuation. The YAML keeps every figure next to its source.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict

from features.law import CssValuation


class ClaimModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    log_amount: float
    log_amount_aspa: float
    in_contact: float
    tenure: dict[str, float]
    single_mother: float
    couple_no_child: float
    age_25_29: float
    higher_education: float
    digital_exclusion: float
    territory: dict[str, float]
    recent_event: float
    woman_aspa: float
    css_free_if_claims_rsa: float
    latent_sd: float


class Calibration(BaseModel):
    model_config = ConfigDict(frozen=True)

    household_type_share: dict[str, float]
    single_parent_headed_by_mother: float
    illectronisme_15_plus: float
    illectronisme_60_plus: float
    poverty_rate: float
    territory_share: dict[str, float]
    ntu: dict[str, float]
    ntu_is_assumption: dict[str, bool]
    ntu_source: dict[str, str]
    gradients: dict
    claim_model: ClaimModel
    css: CssValuation


@lru_cache(maxsize=1)
def load_calibration() -> Calibration:
    raw = yaml.safe_load(resources.files("data").joinpath("calibration.yaml").read_text())
    pop = raw["population"]
    territory = {k: v for k, v in pop["territory_share"].items() if k != "assumption"}
    ntu = raw["non_take_up"]
    cover = raw["css_cover_value"]
    return Calibration(
        household_type_share=pop["household_type_share"],
        single_parent_headed_by_mother=pop["single_parent_headed_by_mother"],
        illectronisme_15_plus=pop["illectronisme_15_plus"],
        illectronisme_60_plus=pop["illectronisme_60_plus"],
        poverty_rate=pop["poverty_rate"],
        territory_share=territory,
        ntu={b: v["ntu"] for b, v in ntu.items()},
        ntu_is_assumption={b: bool(v.get("assumption", False)) for b, v in ntu.items()},
        ntu_source={b: v["source"] for b, v in ntu.items()},
        gradients=raw["gradients"],
        claim_model=ClaimModel(**{k: v for k, v in raw["claim_model"].items() if k != "assumption"}),
        css=CssValuation(tuple(cover["age_upper_bounds"]), tuple(cover["eur_per_month"])),
    )
