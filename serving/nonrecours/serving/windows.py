"""The windows a monitoring report compares: a folder of raw tables, scored now by the champion
(with its outcomes when it holds a truth), or a stretch of the decision log with the outcomes
agents recorded.

Where it sits: ``nonrecours monitor`` builds both windows here (scoring and the log are the serving
layer's) and hands them to :mod:`nonrecours.monitoring.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd

from nonrecours.core.config import Settings
from nonrecours.core.errors import UserError
from nonrecours.core.io import read_extract, read_table
from nonrecours.core.schema import OUTCOMES
from nonrecours.serving.decision_log import DecisionLog, profiles_from_log
from nonrecours.serving.ranking import score_with_champion
from nonrecours.training.evaluate import join_labels
from nonrecours.training.registry import Champion

Window = tuple[datetime | None, datetime | None]
EXAMPLE = "log:2026-10-01..2026-11-01"


def log_window(source: str, since: datetime | None, until: datetime | None) -> Window | None:
    """The decision-log window a source names: ``log`` (--since/--until), ``log:START..END`` (ISO
    dates or times, either side may be empty), or None for a folder."""
    if source == "log":
        return since, until
    if not source.startswith("log:"):
        return None
    start, sep, end = source.removeprefix("log:").partition("..")
    if not sep:
        raise UserError(
            f"{source}: a decision-log window is written log:START..END (for example {EXAMPLE}; either side "
            "may be empty)"
        )
    try:
        return (datetime.fromisoformat(start) if start else None), (datetime.fromisoformat(end) if end else None)
    except ValueError as exc:
        raise UserError(f"{source}: {exc}; dates are ISO, for example {EXAMPLE}T12:00") from None


def window_label(source: str, since: datetime | None, until: datetime | None) -> str:
    window = log_window(source, since, until)
    return source if window is None else f"decision log {window[0] or ''}..{window[1] or ''}"


def check_source(source: str, since: datetime | None, until: datetime | None) -> None:
    if log_window(source, since, until) is None and not Path(source).is_dir():
        raise UserError(f"{source}: not a folder of raw tables, nor `log` / `log:START..END`")


def scored_window(
    source: str,
    champion: Champion,
    settings: Settings,
    *,
    since: datetime | None,
    until: datetime | None,
    open_log: Callable[[], DecisionLog],
    quiet: bool,
) -> pd.DataFrame:
    """Scored profiles of a source: a raw-data folder (scored now by the champion; with ``target``
    when it holds outcomes.parquet) or a decision-log window, with the outcomes agents recorded."""
    window = log_window(source, since, until)
    if window is not None:
        log = open_log()
        scored = profiles_from_log(log.read(*window), log.read_outcomes(*window))
        if scored.empty:
            raise UserError(
                f"the decision log holds no decision between {window[0] or 'the start'} and {window[1] or 'now'}"
            )
        return scored
    folder = Path(source)
    scored = score_with_champion(*read_extract(folder), champion, settings, n_reasons=0, quiet=quiet)
    return (
        join_labels(scored, read_table(folder, OUTCOMES)) if (folder / f"{OUTCOMES.name}.parquet").exists() else scored
    )
