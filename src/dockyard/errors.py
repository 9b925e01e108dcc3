"""The one exception hierarchy. Each kind maps to one HTTP status in api/errors.py."""

from __future__ import annotations


class DockyardError(Exception):
    """Base of every error the daemon raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DockyardError):
    """The named object does not exist (404)."""


class Conflict(DockyardError):
    """The request clashes with the object's current state or another object (409)."""


class InvalidArgument(DockyardError):
    """The request is malformed or asks for something impossible (400)."""


class NotModified(DockyardError):
    """Nothing to do: the object is already in the asked state (304)."""


class Unauthorized(DockyardError):
    """Credentials are missing or refused, here or by a registry (401)."""


class Forbidden(DockyardError):
    """The operation is not allowed on this object (403)."""


class Unavailable(DockyardError):
    """A needed component is not ready or not reachable (503)."""


class Internal(DockyardError):
    """Something failed inside the daemon or below it (500)."""


class StartFailed(DockyardError):
    """The runtime could not start a container's or an exec's process.

    exit_code is what dockerd records for it: 126 (not executable, permission denied),
    127 (not found), 128 (anything else). Raised as one of the two kinds below.
    """

    def __init__(self, message: str, exit_code: int = 128) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class CommandNotRunnable(StartFailed, InvalidArgument):
    """The user's command cannot run: missing, not executable, a bad working directory (400)."""


class RuntimeFailed(StartFailed, Internal):
    """The runtime failed for another reason (500)."""


class Unsupported(DockyardError):
    """The object cannot do this at all, by its configuration (501): reading the log of a
    container whose log driver keeps none."""


class StorageFull(Internal):
    """The data root's disk is full: what could not be written now is kept and retried."""
