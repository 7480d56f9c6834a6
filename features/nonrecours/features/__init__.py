"""The household profile: one feature builder for training, batch scoring and the API.

Owns: :func:`~nonrecours.features.profiles.build_profiles` (the observed tables and the law engine's
answer in, one row per household and benefit out) and, apart, the labels
(:func:`~nonrecours.features.profiles.build_labels`), so that scoring never needs one.

May import: core, law.
"""
