"""Serving: scores, campaigns and caseloads for agents, and the decision log that keeps them all.

Owns: scoring any ranker with reasons in words (:mod:`~nonrecours.serving.scoring`,
:mod:`~nonrecours.serving.reasons`) and ranking an extract (:mod:`~nonrecours.serving.ranking`); campaigns
with a randomised holdout (:mod:`~nonrecours.serving.campaign`) and outreach around them
(:mod:`~nonrecours.serving.outreach`); the decision log (:mod:`~nonrecours.serving.decision_log`), secrets
(:mod:`~nonrecours.serving.secrets`), agents' accounts and caseloads (:mod:`~nonrecours.serving.agents`,
:mod:`~nonrecours.serving.caseload`); what the API does apart from its web framework
(:mod:`~nonrecours.serving.api`, :mod:`~nonrecours.serving.request`, :mod:`~nonrecours.serving.batching`,
:mod:`~nonrecours.serving.access`, :mod:`~nonrecours.serving.openapi`, :mod:`~nonrecours.serving.asgi`);
the windows a monitoring report compares (:mod:`~nonrecours.serving.windows`).

May import: core, law, data, features, training (not monitoring, its sibling).
"""
