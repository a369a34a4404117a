"""The small tree of expected failures. One handler in pulse.web.errors renders them as JSON or a page."""

from __future__ import annotations


class PulseError(Exception):
    """An expected failure with an HTTP status and a sentence that says what to do."""

    status_code = 400

    def __init__(self, message: str, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class BadRequest(PulseError):
    status_code = 400


class TooManyRequests(PulseError):
    status_code = 429


class Unauthorized(PulseError):
    status_code = 401


class Forbidden(PulseError):
    status_code = 403


class NotFound(PulseError):
    status_code = 404


class Conflict(PulseError):
    status_code = 409


class PayloadTooLarge(PulseError):
    status_code = 413


class UnsupportedMediaType(PulseError):
    status_code = 415
