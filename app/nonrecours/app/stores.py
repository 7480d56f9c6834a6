"""Where one command's or one server process's things are: its settings, the environment, the
tracking store, the decision log and the secrets.

Where it sits: the edge, with :mod:`nonrecours.app.environment`. Each location is resolved once, in
the order option, then environment, then settings; each store is opened when first asked for.
Every layer below gets what it needs as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from nonrecours.app.environment import Environment
from nonrecours.core.config import Settings, without_password
from nonrecours.core.errors import UserError
from nonrecours.serving.decision_log import DecisionLog, connect
from nonrecours.serving.secrets import resolve
from nonrecours.training.registry import mlflow_limits, prepare_tracking_store
from nonrecours.training.tracking import TrainingRun

T = TypeVar("T")


@dataclass
class Run:
    """One command's settings and stores. ``tracking``, ``log_url`` and ``secrets_file``: what the
    command line said (None: the environment's, else the settings')."""

    settings: Settings
    env: Environment
    config: Path | None = None
    tracking: str | None = None
    log_url_option: str | None = None
    secrets_file: Path | None = None
    scheduler: str | None = None
    quiet: bool = False

    @cached_property
    def tracking_uri(self) -> str:
        """The tracking store (created if it is a new SQLite file); MLflow's limits set in this process."""
        os.environ.update(mlflow_limits(self.settings.registry))
        return prepare_tracking_store(self.tracking or self.env.tracking_uri or self.settings.registry.tracking_uri)

    @cached_property
    def log_url(self) -> str:
        return self.log_url_option or self.env.decision_log_url or self.settings.serving.decision_log_url

    def secrets(self) -> dict[str, str]:
        """The secrets file's values with the environment's on top."""
        try:
            return resolve(self.secrets_file, self.env.values)
        except ValueError as exc:
            raise UserError(str(exc)) from None

    @cached_property
    def log(self) -> DecisionLog:
        timeout = self.settings.serving.decision_log_timeout_seconds
        return DecisionLog.open(self.log_url, self.secrets(), timeout_seconds=timeout)

    def on_tables(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``operation(engine, *args, **kwargs)`` on the decision log's database, for work that needs
        no pseudonymisation key (accounts, caseloads, purge, grants); a refused URL or a database
        error is a :class:`UserError` naming the log."""
        try:
            engine = connect(self.log_url, timeout_seconds=self.settings.serving.decision_log_timeout_seconds)
            try:
                return operation(engine, *args, **kwargs)
            finally:
                engine.dispose()
        except (ValueError, SQLAlchemyError) as exc:
            what = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            raise UserError(
                f"decision log {without_password(self.log_url)!r}: {operation.__name__} failed ({what})"
            ) from None

    def but(self, section: str, **fields: Any) -> Run:
        """This run with settings section ``section``'s ``fields`` replaced."""
        changed = getattr(self.settings, section).model_copy(update=fields)
        return replace(self, settings=self.settings.model_copy(update={section: changed}))

    def training_run(self) -> TrainingRun:
        return TrainingRun(tracking_uri=self.tracking_uri, launched_run_id=self.env.run_id, user=self.env.user)
