"""The ``MLproject`` file, written from the settings: its entry points are thin aliases of the CLI
and its parameters' defaults are the settings' defaults (``nonrecours mlproject`` prints it; a test
checks that the committed file equals it). The text is ``templates/MLproject``, whose ``$`` fields
this fills (MLflow's own ``{parameter}`` fields are left to it).

Where it sits: in the application layer, beside the CLI it aliases.
"""

from __future__ import annotations

from importlib import resources
from string import Template

from nonrecours.core.config import default

OUT = "demo"
"""The folder every entry point reads and writes by default, as ``make demo``."""


def render() -> str:
    text = resources.files("nonrecours.app").joinpath("templates", "MLproject").read_text()
    return Template(text).substitute(
        households=default("scenario", "households"), seed=default("scenario", "seed"), out=OUT
    )
