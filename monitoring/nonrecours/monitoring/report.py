"""One monitoring report: drift (Evidently), fairness (fairlearn), quality where outcomes are known,
a verdict against the configured thresholds; written as a self-contained HTML page for people, a
full JSON for machines, and listed in ``index.html``.

Where it sits: ``nonrecours monitor`` builds the scored reference and current windows and calls
:func:`build_report` then :func:`write_report`. Pure apart from ``write_report``.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from nonrecours.core.catalogue import catalogue
from nonrecours.core.config import FairnessConfig, MonitoringConfig
from nonrecours.core.io import write_text
from nonrecours.monitoring.drift import DriftResult, drift_report
from nonrecours.monitoring.fairness import fairness_table, follow_up_table
from nonrecours.monitoring.plots import group_figure, png_data_uri
from nonrecours.monitoring.quality import QualityResult, quality_report
from nonrecours.training.metrics import evaluate, recall_gaps


@dataclass
class MonitoringReport:
    created: str
    model: str
    reference: str
    current: str
    drift: DriftResult
    fairness: pd.DataFrame | None
    gaps: pd.DataFrame | None
    quality: pd.DataFrame | None
    evidently_quality: QualityResult | None
    follow_up: pd.DataFrame | None
    max_gap: float
    failures: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "fail" if self.failures else "pass"

    def to_json(self) -> dict:
        records = lambda df: None if df is None else json.loads(df.to_json(orient="records"))  # noqa: E731
        return {
            "created": self.created,
            "model": self.model,
            "reference": self.reference,
            "current": self.current,
            "verdict": self.verdict,
            "failures": self.failures,
            "drift": {
                "share": self.drift.share,
                "columns": self.drift.columns,
                "drifted": self.drift.drifted,
                "breached": self.drift.breached,
                "evidently": json.loads(json.dumps(self.drift.snapshot.dict(), default=float)),
            },
            "fairness": records(self.fairness),
            "recall_gaps": records(self.gaps),
            "quality": records(self.quality),
            "follow_up": records(self.follow_up),
            "classification": None
            if self.evidently_quality is None
            else {
                "current": self.evidently_quality.current,
                "reference": self.evidently_quality.reference,
                "tests": self.evidently_quality.tests,
                "evidently": json.loads(json.dumps(self.evidently_quality.snapshot.dict(), default=str)),
            },
        }


HELD_OUT = "held-out test set (training run)"


def _quality(scored: pd.DataFrame, capacity_share: float) -> dict[str, float]:
    """The training evaluation's metrics (nonrecours.training.metrics.evaluate) on one window."""
    m = evaluate(
        scored["target"].to_numpy(dtype=bool),
        scored["p_unclaimed"].to_numpy(dtype=float),
        scored["expected_unclaimed_monthly"].to_numpy(dtype=float),
        scored["unclaimed_amount"].to_numpy(dtype=float),
        capacity_share,
    )
    return {
        k: m[k]
        for k in (
            "rows",
            "positives",
            "roc_auc",
            "pr_auc",
            "brier",
            "ece",
            "recall_at_k",
            "precision_at_k",
            "euros_share_at_k",
        )
    }


def build_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    cfg: MonitoringConfig,
    fairness_cfg: FairnessConfig,
    capacity_share: float,
    model: str,
    reference_name: str,
    current_name: str,
    held_out: dict[str, float] | None = None,
) -> MonitoringReport:
    """Both frames: scored profiles (one row per household and benefit). The current window's
    selection rates per group are always reported; with ``target`` (outcomes known) recall,
    precision, calibration and quality too, gated by the thresholds; with ``contacted``/``claimed``
    (a decision-log window with recorded outcomes) the follow-up of outreach per group."""
    drift = drift_report(reference, current, max_drift_share=cfg.max_drift_share)
    failures = []
    if drift.breached:
        failures.append(
            f"drift: {drift.share:.0%} of {drift.columns} columns drifted (threshold "
            f"{cfg.max_drift_share:.0%}): {', '.join(drift.drifted)}"
        )
    gaps = quality = classification = follow_up = None
    fairness = fairness_table(
        current,
        capacity_share=capacity_share,
        min_positives=fairness_cfg.min_group_positives,
        bootstrap=fairness_cfg.bootstrap_samples,
    )
    if "contacted" in current.columns and current["contacted"].notna().any():
        follow_up = follow_up_table(current, bootstrap=fairness_cfg.bootstrap_samples)
    if "target" in current.columns:
        gaps = recall_gaps(fairness, recall="recall")
        for g in gaps.itertuples(index=False):
            if g.gap > fairness_cfg.max_group_recall_gap:
                failures.append(
                    f"fairness: recall gap {g.gap:.2f} on {g.attribute} ({g.lowest} vs {g.highest}; threshold "
                    f"{fairness_cfg.max_group_recall_gap:.2f})"
                )
        windows = [("current", current)] + ([("reference", reference)] if "target" in reference.columns else [])
        quality = pd.DataFrame([{"window": name, **_quality(df, capacity_share)} for name, df in windows])
        if held_out:  # for context, not tested: shows how far an in-sample reference flatters the model
            quality = pd.concat(
                [
                    quality,
                    pd.DataFrame(
                        [{"window": HELD_OUT, **{k: held_out.get(k, np.nan) for k in quality.columns if k != "window"}}]
                    ),
                ],
                ignore_index=True,
            )
        classification = quality_report(reference, current, cfg=cfg, capacity_share=capacity_share)
        failures += [f"quality ({t['view'].replace('_', ' ')}): {t['description']}" for t in classification.failed]
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    return MonitoringReport(
        created,
        model,
        reference_name,
        current_name,
        drift,
        fairness,
        gaps,
        quality,
        classification,
        follow_up,
        fairness_cfg.max_group_recall_gap,
        failures,
    )


def _table(df: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.3f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(figure, alt: str) -> str:
    return f'<img class="figure" alt="{html.escape(alt)}" src="{png_data_uri(figure)}">'


def _quality_html(report: MonitoringReport, t) -> str:
    ev = report.evidently_quality
    if ev is None or not ev.tests:
        tests = f"<p>{html.escape(t('monitoring.quality_untested'))}</p>"
    else:
        tests = _table(
            pd.DataFrame(
                [
                    {
                        "view": x["view"],
                        "test": x["name"],
                        "result": t("monitoring.test_pass") if x["passed"] else t("monitoring.test_fail"),
                        "detail": x["description"],
                    }
                    for x in ev.tests
                ]
            )
        )
    frame = (
        ""
        if ev is None
        else f'<iframe title="{html.escape(t("monitoring.quality_frame"))}" '
        f'srcdoc="{html.escape(ev.snapshot.get_html_str(as_iframe=False))}"></iframe>'
    )
    return (
        "<section "
        f"id='quality'><h2>{html.escape(t('monitoring.quality'))}</h2><p>{html.escape(t('monitoring.quality_text'))}</p>"
        f"{tests}<h3>{html.escape(t('monitoring.training_metrics'))}</h3><p>{html.escape(t('monitoring.training_metrics_text'))}</p>"
        f"{_table(report.quality)}{frame}</section>"
    )


def to_html(report: MonitoringReport, language: str) -> str:
    """The report as one self-contained page, in ``language`` (``serving.language`` for ``nonrecours
    monitor``; Evidently's panels stay in English). Column names and figures are the data's own."""
    t = catalogue(language)
    e = lambda key, **fields: html.escape(t(key, **fields))  # noqa: E731
    colour = "#1a7f37" if report.verdict == "pass" else "#cf222e"
    failures = "".join(f"<li>{html.escape(f)}</li>" for f in report.failures) or f"<li>{e('monitoring.no_breach')}</li>"
    intro = f"<p>{e('monitoring.intro')}"
    assert report.fairness is not None  # build_report always makes the fairness table
    if report.gaps is None:
        cols = ["attribute", "group", "rows", "selection_rate", "selection_rate_low", "selection_rate_high"]
        figure = group_figure(report.fairness, "selection_rate", t("monitoring.selection_title"))
        fairness = (
            intro
            + f"{e('monitoring.no_outcomes')}</p>"
            + _img(figure, t("monitoring.selection_alt"))
            + _table(report.fairness[cols])
        )
    else:
        cols = [
            "attribute",
            "group",
            "rows",
            "positives",
            "recall",
            "recall_low",
            "recall_high",
            "selection_rate",
            "precision",
            "calibration_gap",
            "gated",
        ]
        figure = group_figure(
            report.fairness, "recall", t("monitoring.recall_title", gap=f"{report.max_gap:.2f}"), report.max_gap
        )
        fairness = (
            intro
            + f"{e('monitoring.recall_text')}</p>"
            + _img(figure, t("monitoring.recall_alt"))
            + _table(report.fairness[cols])
            + f"<h3>{e('monitoring.gaps')}</h3>"
            + _table(report.gaps)
        )
    if report.follow_up is not None:
        fairness += (
            f"<h3 id='follow-up'>{e('monitoring.follow_up')}</h3><p>{e('monitoring.follow_up_text')}</p>"
            + _table(report.follow_up)
        )
    quality = "" if report.quality is None else _quality_html(report, t)
    evidently = html.escape(report.drift.snapshot.get_html_str(as_iframe=False))
    drifted = ", ".join(report.drift.drifted) or t("monitoring.none")
    css = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:.9em}"
        "td,th{border:1px solid #ccc;padding:.2em .5em}\n"
        f".verdict{{color:#fff;background:{colour};padding:.3em .8em;border-radius:.3em}}"
        "iframe{width:100%;height:900px;border:1px solid #ccc}img.figure{max-width:100%}"
    )
    title, verdict = e("monitoring.title"), e(f"monitoring.verdict.{report.verdict}")
    header = e(
        "monitoring.header",
        model=report.model,
        reference=report.reference,
        current=report.current,
        created=report.created,
    )
    share = t.percent(report.drift.share, 1)
    drift = e("monitoring.drift_text", share=share, columns=report.drift.columns, drifted=drifted)
    head = f'<html lang="{language}"><head><meta charset="utf-8"><title>{title} {report.created}</title>'
    return f"""<!doctype html>{head}
<style>{css}</style></head><body>
<h1>{title} <span class="verdict">{verdict}</span></h1>
<p>{header}</p>
<ul>{failures}</ul>
<section id="drift"><h2>{e("monitoring.drift")}</h2><p>{drift}</p>
<iframe title="{e("monitoring.drift_frame")}" srcdoc="{evidently}"></iframe></section>
<section id="fairness"><h2>{e("monitoring.fairness")}</h2>{fairness}</section>
{quality}
</body></html>"""


def write_report(report: MonitoringReport, out: Path, language: str) -> tuple[Path, Path, Path]:
    """``report-<time>.html`` and ``.json`` in ``out``, then ``index.html`` listing every report there.
    The file name is the writing time to the microsecond, with a counter should that be taken too,
    so two reports written in the same second (a scheduler's two windows) are both kept."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")
    stem, n = f"report-{stamp}", 1
    while (out / f"{stem}.json").exists() or (out / f"{stem}.html").exists():
        n += 1
        stem = f"report-{stamp}-{n}"
    page, data = out / f"{stem}.html", out / f"{stem}.json"
    write_text(page, to_html(report, language))
    write_text(data, json.dumps(report.to_json(), indent=1, default=float))
    return page, data, write_index(out, language)


def write_index(out: Path, language: str) -> Path:
    """``index.html`` in ``out``: every report there, newest first, with its verdict and what it breached."""
    t = catalogue(language)
    rows = []
    for path in sorted(out.glob("report-*.json"), reverse=True):
        r = json.loads(path.read_text())
        why = "; ".join(f.split(":", 1)[0] for f in r["failures"])  # drift / fairness / quality (view)
        verdict = t(f"monitoring.verdict.{r['verdict']}")
        cells = (r["created"], r["model"], r["reference"], r["current"], verdict, why)
        link = path.with_suffix(".html").name
        rows.append(
            "<tr>"
            + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
            + f"<td><a href='{html.escape(link)}'>{html.escape(link)}</a></td></tr>"
        )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.raw("monitoring.index_columns"))
    index = out / "index.html"
    write_text(
        index,
        f"<!doctype html><html lang='{language}'><head><meta "
        f"charset='utf-8'><title>{html.escape(t('monitoring.index_title'))}</title></head><body>"
        f"<h1>{html.escape(t('monitoring.index_title'))}</h1><table "
        f"border='1'><tr>{head}</tr>{''.join(rows)}</table></body></html>",
    )
    return index
