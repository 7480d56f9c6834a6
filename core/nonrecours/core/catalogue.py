"""Message catalogues: every word agents and auditors read, one YAML file per language
(``messages/fr.yaml``, ``en.yaml`` beside this module), none written into the code or the templates.

Where it sits: in core, since three layers read it: the reasons in words and the rules' reason
(:mod:`nonrecours.serving.reasons`, :mod:`nonrecours.serving.scoring`), the agents' web page
(:mod:`nonrecours.app.web`) and the monitoring report (:mod:`nonrecours.monitoring.report`). The
setting ``serving.language`` picks the file (French by default: agents and auditors read French;
English for data scientists).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

LANGUAGES = ("fr", "en")


class Catalogue:
    """Messages by dotted key (``"caseload.title"``), formatted with keyword fields."""

    def __init__(self, language: str, messages: dict):
        self.language = language
        self.messages = messages

    def raw(self, key: str):
        node = self.messages
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(
                    f"message {key!r} is not in the {self.language} catalogue "
                    f"(core/nonrecours/core/messages/{self.language}.yaml)"
                )
            node = node[part]
        return node

    def __call__(self, key: str, **fields) -> str:
        text = self.raw(key)
        return str(text).format(**fields) if fields else str(text)

    def euros(self, value: float | None, decimals: int = 0) -> str:
        """An amount as the language writes it: ``1 033,32 €`` in French, ``1,033.32 €`` in
        English (``—`` for none): the reasons in words and the web page alike."""
        if value is None:
            return "—"
        text = f"{value:,.{decimals}f}"
        if self.language == "fr":
            text = text.replace(",", "\u202f").replace(".", ",")
        return f"{text}\u00a0€"

    def percent(self, value: float | None, decimals: int = 0) -> str:
        """A share as a percentage: ``41 %`` in French, ``41%`` in English."""
        if value is None:
            return "—"
        text = f"{value:.{decimals}%}"
        return text.replace("%", "\u00a0%").replace(".", ",") if self.language == "fr" else text


def keys(node: dict, prefix: str = "") -> set[str]:
    """Every dotted key of a catalogue (the leaves)."""
    out: set[str] = set()
    for k, v in node.items():
        out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return out


@cache
def catalogue(language: str) -> Catalogue:
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r}: expected one of {list(LANGUAGES)}")
    text = resources.files("nonrecours.core").joinpath("messages", f"{language}.yaml").read_text(encoding="utf-8")
    return Catalogue(language, yaml.safe_load(text))
