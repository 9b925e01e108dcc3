"""The one place that turns an error kind into an HTTP status."""

from __future__ import annotations

from dockyard import errors
from dockyard.api.messages import BodyTooLarge

_STATUS: tuple[tuple[type[errors.DockyardError], int], ...] = (
    (BodyTooLarge, 413),  # an InvalidArgument of the HTTP layer: before InvalidArgument
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidArgument, 400),
    (errors.NotModified, 304),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.Unavailable, 503),
    (errors.Internal, 500),
    (errors.Unsupported, 501),
)


def status_for(exc: BaseException) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500
