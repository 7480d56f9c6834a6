"""The application, on top of every layer: wiring only.

Owns: the command line (:mod:`~nonrecours.app.cli` and the command modules it lists; a command parses
its options, loads the settings, opens its stores through :class:`~nonrecours.app.stores.Run`, calls
the layers below and prints), the BentoML service's declarations (:mod:`~nonrecours.app.service`,
:mod:`~nonrecours.app.bento`), the agents' web page (:mod:`~nonrecours.app.web`), and the process
environment, read once (:mod:`~nonrecours.app.environment`).

May import: every layer.
"""
