"""The synthetic world: a population an agency would hold, its truth, and the field of outreach.

Owns: the generator of households, their situations and claims over consecutive quarters
(:mod:`~nonrecours.data.generate`, :mod:`~nonrecours.data.behaviour`), calibrated to published figures
(:mod:`~nonrecours.data.calibration`, ``calibration.yaml``, ``population.yaml``) and checked against
them (:mod:`~nonrecours.data.summary`); a population's folders on disk (:mod:`~nonrecours.data.folders`);
what agents would record after contacts (:mod:`~nonrecours.data.field`); deliberate shifts that
monitoring must catch (:mod:`~nonrecours.data.shift`). With the evaluation, the only readers of columns
of role ``truth``.

May import: core, law.
"""
