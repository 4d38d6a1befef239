"""The update's own errors: each maps to one exit code of `bluegreen update`."""

from __future__ import annotations

from router.errors import RouterError


class UpdateFailed(RouterError):
    """The update could not run (source, disk, lock, router); exit 1. The message says what to fix."""


class UpdateRejected(RouterError):
    """The new model is unfit (checksum mismatch, or the cutover rejected it); exit 2."""
