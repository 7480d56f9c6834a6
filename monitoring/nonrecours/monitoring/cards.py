"""``nonrecours card``: the model card and the public notice of each registered version.

Where it sits: beside :mod:`nonrecours.monitoring.notice`; the card is the one the training run
wrote (:mod:`nonrecours.training.card`), read back from the run's artifacts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow

from nonrecours.core.config import Settings, without_password
from nonrecours.core.errors import NotFound
from nonrecours.core.io import write_text
from nonrecours.monitoring.notice import notice
from nonrecours.training.registry import load_scorer


def write_cards(out: Path, version: str | None, settings: Settings, uri: str) -> list[Path]:
    """Model card and public notice of each registered version (or of ``version``) into ``out``."""
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    name = settings.registry.model_name
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    versions = [v for v in versions if version is None or str(v.version) == str(version)]
    if not versions:
        which = f"version {version} of {name}" if version else f"version of {name}"
        raise NotFound(f"no registered {which} in {without_password(uri)}: train one with `nonrecours train`")
    written = []
    for v in versions:
        with tempfile.TemporaryDirectory() as d:
            card_text = Path(client.download_artifacts(str(v.run_id), "model_card.md", d)).read_text()
        scorer = load_scorer(f"models:/{name}/{v.version}")
        text = notice(
            name=name,
            version=v.version,
            run_id=str(v.run_id),
            scorer=scorer,
            capacity_share=settings.training.capacity_share,
        )
        written += [
            write_text(out / f"model_card_v{v.version}.md", card_text),
            write_text(out / f"notice_v{v.version}.md", text),
        ]
    return written
