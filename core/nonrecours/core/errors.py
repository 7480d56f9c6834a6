"""The one error type a user can fix.

Where it sits: in the core, so that every layer can say "the caller can fix this" the same way. The
command line prints the message and exits 2; the API answers 400 with it (404 when it is also a
:class:`LookupError`). Anything else is a bug, and is reported as one.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""


class NotFound(UserError, LookupError):
    """What the user named does not exist (a campaign, a decision, a model version)."""
