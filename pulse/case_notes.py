"""A case's notes as a reader reads them: a person's words as written, and the events Pulse records (a status,
an owner, an escalation, a score the customer changed) as a code and its data, told in the reader's language."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pulse import i18n, labels
from pulse.i18n import N_
from pulse.models import CaseNote, User

NOTE = "note"
SENTENCES = {
    "status": N_("Status: %(old)s → %(new)s."),
    "owner": N_("Owner: %(owner)s."),
    "escalated": N_("Overdue: escalated to %(owner)s."),
    "score_changed": N_("The customer changed the score from %(old)s to %(new)s."),
}
KINDS = (NOTE, *SENTENCES)
COMMENT = N_("Comment: %(comment)s")
FORMER_USER = N_("a former user")  # the event names a user id no longer stored


async def names(notes: Iterable[CaseNote], *, emails: bool = False) -> dict[int, str]:
    """The users the events of `notes` name, by id: their name (or e-mail) as it is now, not when it happened."""
    ids = {n.data.get("user_id") for n in notes if n.kind in ("owner", "escalated") and n.data}
    users = await User.filter(id__in=[i for i in ids if isinstance(i, int)])
    return {u.id: u.email if emails else (u.display_name or u.email) for u in users}


def text(note: CaseNote, locale: str, people: Mapping[int, str], *, codes: bool = False) -> str:
    """What `note` says in `locale`; `people` names the users its event refers to (see `names`). With `codes`,
    statuses are their codes: the API's English sentence, as it read before events had a kind."""
    sentence = SENTENCES.get(note.kind)
    if sentence is None:
        return note.body
    data = note.data or {}
    if note.kind == "status":
        old, new = str(data.get("from", "")), str(data.get("to", ""))
        if not codes:
            old, new = labels.label("case_status", old, locale), labels.label("case_status", new, locale)
        variables = {"old": old, "new": new}
    elif note.kind in ("owner", "escalated"):
        variables = {"owner": people.get(data.get("user_id")) or i18n.translate(locale, FORMER_USER)}
    else:
        variables = {"old": i18n.number(data.get("from", 0), locale), "new": i18n.number(data.get("to", 0), locale)}
    said = i18n.translate(locale, sentence, **variables)
    if data.get("comment"):
        said += " " + i18n.translate(locale, COMMENT, comment=data["comment"])
    return said
