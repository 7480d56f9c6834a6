"""The ``nonrecours`` command: one entry point per pipeline stage, plus ``pipeline`` that chains them.

Where it sits: the top of the application layer, and the console script's entry point. The
commands live by subject, each a thin function over the layers below; importing their modules
declares them on :data:`app` (:mod:`nonrecours.app.commands` says how a command is declared).

- :mod:`nonrecours.app.cli_data`: ``generate``, ``entitlements``, ``features``, ``schema``, ``mlproject``
- :mod:`nonrecours.app.cli_models`: ``train``, ``promote``, ``card``, ``monitor``
- :mod:`nonrecours.app.cli_outreach`: ``score``, ``campaign``, ``outreach``
- :mod:`nonrecours.app.cli_serve`: ``serve``, ``keys``, ``purge``, ``grant-roles``, ``agents ...``
- :mod:`nonrecours.app.pipeline`: ``pipeline``
"""

from __future__ import annotations

from nonrecours.app import cli_data, cli_models, cli_outreach, cli_serve, pipeline
from nonrecours.app.commands import app

COMMAND_MODULES = (cli_data, cli_models, cli_outreach, cli_serve, pipeline)
"""Imported for the commands they declare on ``app``."""

__all__ = ["app"]
