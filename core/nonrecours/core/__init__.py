"""The core: what every layer shares and nothing else decides.

Owns: the data contract, every column declared once (:mod:`~nonrecours.core.schema`); the one typed
configuration and its refusals (:mod:`~nonrecours.core.config`); the user-facing error type
(:mod:`~nonrecours.core.errors`); validated, atomic reading and writing of tables and files
(:mod:`~nonrecours.core.io`); partitioned execution over local processes or Dask
(:mod:`~nonrecours.core.parallel`); the words of each language (:mod:`~nonrecours.core.catalogue`).

May import: nothing of nonrecours.
"""
