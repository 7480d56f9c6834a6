"""What ``bentoml serve`` imports: it takes ``module:attribute``, so this module builds the service
when it is imported, from the environment ``nonrecours serve`` gave the process.

Where it sits: the entry point of each server process, like a ``__main__``; nothing imports it
(the one module that works at import; a test keeps it the only one).
"""

from nonrecours.app.environment import Environment
from nonrecours.app.service import service_from_environment

Scoring = service_from_environment(Environment.from_os())
