"""The small tree of expected failures. One handler in pulse.web.errors renders them as JSON or a page."""

from __future__ import annotations

from pulse import i18n


class PulseError(Exception):
    """An expected failure with an HTTP status and a sentence that says what to do.

    The sentence is a msgid (marked with N_) and its %(name)s variables: `.message` is the English text the API
    and the logs get, `.localized(locale)` the sentence a person reads on a page.
    """

    status_code = 400

    def __init__(self, message: str, errors: list[dict] | None = None, **variables: object) -> None:
        self.msgid = message
        self.variables = variables
        self.message = message % variables if variables else message
        super().__init__(self.message)
        self.errors = errors or []

    def localized(self, locale: str) -> str:
        """The sentence in `locale` (a message already translated by its raiser comes back as it is)."""
        if not self.variables:  # not %-formatted: it may hold a literal percent sign from the input it quotes
            return i18n.translations(locale).gettext(self.msgid)
        return i18n.translate(locale, self.msgid, **self.variables)


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
