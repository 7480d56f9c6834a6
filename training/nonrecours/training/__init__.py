"""The models: trained, measured against baselines, logged to MLflow, registered and gated.

Owns: the non-take-up model and its baselines and ceiling (:mod:`~nonrecours.training.model`,
:mod:`~nonrecours.training.baselines`, :mod:`~nonrecours.training.evaluate`, :mod:`~nonrecours.training.metrics`),
the training run on a folder (:mod:`~nonrecours.training.train`) and its MLflow record and model card
(:mod:`~nonrecours.training.tracking`, :mod:`~nonrecours.training.card`); learning from what an agency
observes after outreach (:mod:`~nonrecours.training.observed`, :mod:`~nonrecours.training.outreach`) and
the value of a ranking, true and estimated (:mod:`~nonrecours.training.policies`); the promotion gate
(:mod:`~nonrecours.training.gate`) and every registry lookup (:mod:`~nonrecours.training.registry`).

May import: core, law, data, features.
"""
