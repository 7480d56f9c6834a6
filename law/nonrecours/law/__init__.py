"""The law: OpenFisca-France on an agency's tables, and back. No benefit rule is written here.

Owns: the mapping of the observed tables onto OpenFisca's entities, with the inputs the agency does
not hold estimated and marked (:mod:`~nonrecours.law.situation`); the simulation and the variables
read back (:mod:`~nonrecours.law.openfisca`, :mod:`~nonrecours.law.engine`); the legal basis of an
amount, in OpenFisca's own labels and references (:mod:`~nonrecours.law.basis`); the few parameters
production needs that OpenFisca does not give (:mod:`~nonrecours.law.parameters`).

May import: core.
"""
