"""The process environment, read once, at the edge.

Where it sits: in the application layer. The CLI and the service's entry point call
:meth:`Environment.from_os`; every layer below gets what it needs as arguments (a test checks
that no module below the application layer reads ``os.environ``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

TRACKING_URI = "MLFLOW_TRACKING_URI"
RUN_ID = "MLFLOW_RUN_ID"
"""Set by ``mlflow run`` for the run it opened; training logs into that run."""
DECISION_LOG = "NONRECOURS_DECISION_LOG_URL"
CONFIG = "NONRECOURS_CONFIG"
"""Settings file the service's processes load (``nonrecours serve --config`` sets it)."""
SECRETS_FILE = "NONRECOURS_SECRETS_FILE"
"""Secrets file the service's processes read (``nonrecours serve --secrets`` sets it)."""
FAULT_HOUSEHOLD = "NONRECOURS_TEST_FAULT_HOUSEHOLD"
"""Tests only: the API fails inside scoring for a request holding this household id, as a law-engine
or model error would (the batch-isolation test sets it; never set in production)."""


@dataclass(frozen=True)
class Environment:
    """What the environment says, with the whole mapping kept for secrets and child processes."""

    tracking_uri: str | None = None
    run_id: str | None = None
    decision_log_url: str | None = None
    config: Path | None = None
    secrets_file: Path | None = None
    user: str = "unknown"
    fault_household: int | None = None
    values: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Environment:
        def path(name: str) -> Path | None:
            return Path(values[name]) if values.get(name) else None

        return cls(
            tracking_uri=values.get(TRACKING_URI) or None,
            run_id=values.get(RUN_ID) or None,
            decision_log_url=values.get(DECISION_LOG) or None,
            config=path(CONFIG),
            secrets_file=path(SECRETS_FILE),
            user=values.get("USER", "unknown"),
            fault_household=int(values[FAULT_HOUSEHOLD]) if values.get(FAULT_HOUSEHOLD) else None,
            values=dict(values),
        )

    @classmethod
    def from_os(cls) -> Environment:
        return cls.from_mapping(os.environ)
