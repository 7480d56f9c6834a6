"""Monitoring: drift, fairness and quality of the champion between two windows, for auditors.

Owns: Evidently's drift and classification tests (:mod:`~nonrecours.monitoring.drift`,
:mod:`~nonrecours.monitoring.quality`), fairlearn's per-group recall (:mod:`~nonrecours.monitoring.fairness`),
the report, its pages and its verdict (:mod:`~nonrecours.monitoring.report`, :mod:`~nonrecours.monitoring.plots`,
:mod:`~nonrecours.monitoring.run`), and the model card with the public notice of each version
(:mod:`~nonrecours.monitoring.cards`, :mod:`~nonrecours.monitoring.notice`).

May import: core, law, data, features, training (not serving, its sibling).
"""
