"""The ``MLproject`` file, written from the settings: its entry points are thin aliases of the CLI
and its parameters' defaults are the settings' defaults (``nonrecours mlproject`` prints it; a test
checks that the committed file equals it).

Where it sits: in the application layer, beside the CLI it aliases.
"""

from __future__ import annotations

from nonrecours.core.config import default

OUT = "demo"
"""The folder every entry point reads and writes by default, as ``make demo``."""


def render() -> str:
    households, seed = default("scenario", "households"), default("scenario", "seed")
    return f"""# Written by `nonrecours mlproject` from the settings' defaults (nonrecours/core/config.py);
# a test fails if this file and that command disagree. Thin aliases of the CLI:
# `mlflow run . --env-manager local -e <entry point>`. Every stage reads and writes the same folder (`out`).
name: nonrecours

entry_points:
  generate:
    parameters:
      households: {{type: int, default: {households}}}
      seed: {{type: int, default: {seed}}}
      out: {{type: string, default: {OUT}}}
    command: "nonrecours generate --households {{households}} --seed {{seed}} --out {{out}}"

  entitlements:
    parameters:
      out: {{type: string, default: {OUT}}}
    command: "nonrecours entitlements --input {{out}} --out {{out}}"

  features:
    parameters:
      out: {{type: string, default: {OUT}}}
    command: "nonrecours features --input {{out}} --out {{out}}"

  train:
    parameters:
      out: {{type: string, default: {OUT}}}
    command: "nonrecours train --input {{out}}"

  main:
    parameters:
      households: {{type: int, default: {households}}}
      seed: {{type: int, default: {seed}}}
      out: {{type: string, default: {OUT}}}
    command: "nonrecours pipeline --households {{households}} --seed {{seed}} --out {{out}}"

  score:
    parameters:
      out: {{type: string, default: {OUT}}}
    command: "nonrecours score --input {{out}} --out {{out}}/worklist.csv --secrets {{out}}/secrets.env --decision-log sqlite:///{{out}}/decisions.db"

  # Exits non-zero when a threshold is breached, so a scheduler running `mlflow run -e monitor` alerts.
  monitor:
    parameters:
      reference: {{type: string, default: {OUT}}}
      current: {{type: string, default: {OUT}/fresh}}
      reports: {{type: string, default: {OUT}/reports}}
    command: "nonrecours monitor --reference {{reference}} --current {{current}} --out {{reports}}"
"""
