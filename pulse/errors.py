"""The small tree of expected failures. One handler in pulse.web.errors renders them as JSON or a page."""

from __future__ import annotations

from pulse import i18n


class PulseError(Exception):
    """An expected failure with an HTTP status and a sentence that says what to do.

    The sentence is a msgid (marked with N_) and its %(name)s variables: `.message` is the English text the API
    and the logs get, `.localized(locale)` the sentence a person reads on a page.
    """

    status_code = 400

    def __init__(
        self,
        message: str | tuple[str, str],
        errors: list[dict] | None = None,
        *,
        codes: dict[str, str] | None = None,
        **variables: object,
    ) -> None:
        # a (singular, plural) pair from i18n.N_plural: the count `num` chooses the form, in every language
        self.plural = message if isinstance(message, tuple) else None
        self.msgid = self.plural[variables["num"] != 1] if self.plural else message
        self.variables = variables
        self.codes = codes or {}  # variable -> the kind of code it holds (pulse.labels): a person reads its label
        self.message = self.msgid % variables if variables else self.msgid
        super().__init__(self.message)
        self.errors = errors or []

    def localized(self, locale: str) -> str:
        """The sentence in `locale` (a message already translated by its raiser comes back as it is)."""
        if self.plural:
            count = self.variables["num"]
            assert isinstance(count, int)
            return i18n.translate_plural(
                locale, *self.plural, count, **{**self.variables, "num": i18n.number(count, locale, 0)}
            )
        if self.codes:
            from pulse import labels

            shown = {**self.variables}
            for name, kind in self.codes.items():
                shown[name] = labels.label(kind, str(self.variables[name]), locale)
            return i18n.translate(locale, self.msgid, **shown)
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
