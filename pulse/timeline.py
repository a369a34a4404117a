"""A contact's timeline: touchpoints, invitations (with why one was skipped), answers and cases, in time order."""

from __future__ import annotations

from collections.abc import Collection

from tortoise.expressions import Q, Subquery

from pulse import case_notes
from pulse.catalog import Catalog
from pulse.models import CaseNote, Contact, FollowUpCase, Invitation, Response, Touchpoint


def in_teams(team_ids: Collection[int]) -> Q:
    """Contacts with something in these teams: a touchpoint (so its invitations), an answer or a case."""
    return (
        Q(id__in=Subquery(Touchpoint.filter(team_id__in=team_ids).values("contact_id")))
        | Q(id__in=Subquery(Invitation.filter(response__team_id__in=team_ids).values("contact_id")))
        | Q(id__in=Subquery(FollowUpCase.filter(team_id__in=team_ids).values("contact_id")))
    )


async def _note_texts(case_id: int) -> list[str]:
    """A case's notes as the API has always given them: English sentences, users by e-mail."""
    notes = await CaseNote.filter(case_id=case_id).order_by("id")
    people = await case_notes.names(notes, emails=True)
    return [case_notes.text(n, "en", people, codes=True) for n in notes]


async def events(contact: Contact, catalog: Catalog, team_ids: Collection[int] | None = None) -> list[dict]:
    """Everything that happened with `contact`; with `team_ids`, only what belongs to those teams."""
    touchpoints = Touchpoint.filter(contact_id=contact.id)
    invitations = Invitation.filter(contact_id=contact.id)
    responses = Response.filter(invitation__contact_id=contact.id, discarded=False)
    cases = FollowUpCase.filter(contact_id=contact.id)
    if team_ids is not None:  # each row by its own team: an answer and its case keep the team they came in with
        touchpoints = touchpoints.filter(team_id__in=team_ids)
        invitations = invitations.filter(touchpoint__team_id__in=team_ids)
        responses = responses.filter(team_id__in=team_ids)
        cases = cases.filter(team_id__in=team_ids)
    items: list[tuple[str, int, dict]] = []
    for tp in await touchpoints.select_related("team"):
        items.append(
            (
                tp.occurred_at.isoformat(),
                0,
                {
                    "kind": "touchpoint",
                    "at": tp.occurred_at.isoformat(),
                    "id": tp.id,
                    "type": tp.type,
                    "source": tp.source,
                    "external_id": tp.external_id,
                    "team": tp.team.slug if tp.team else None,
                    "channel": tp.channel,
                    "stage": tp.stage,
                    "agent": tp.agent,
                },
            )
        )
    for inv in await invitations:
        at = inv.sent_at or inv.send_at or inv.created_at
        items.append(
            (
                at.isoformat(),
                1,
                {
                    "kind": "invitation",
                    "at": at.isoformat(),
                    "id": inv.id,
                    "survey": inv.survey_id,
                    "status": inv.status,
                    "skip_reason": inv.skip_reason,
                    "touchpoint_id": inv.touchpoint_id,
                    "locale": inv.locale,
                },
            )
        )
    for response in await responses:
        at = response.answered_at or response.created_at
        survey = catalog.get(response.survey_id)
        items.append(
            (
                at.isoformat(),
                2,
                {
                    "kind": "response",
                    "at": at.isoformat(),
                    "id": response.id,
                    "survey": response.survey_id,
                    "score": response.score,
                    "band": survey.band_for(response.score).name if survey else None,
                    "comment": response.comment,
                    "confirmed": response.confirmed,
                    "invitation_id": response.invitation_id,
                    "history": response.history,
                },
            )
        )
    for case in await cases.select_related("owner"):
        items.append(
            (
                case.created_at.isoformat(),
                3,
                {
                    "kind": "case",
                    "at": case.created_at.isoformat(),
                    "id": case.id,
                    "status": case.status,
                    "owner": case.owner.email if case.owner else None,
                    "due_at": case.due_at.isoformat(),
                    "response_id": case.response_id,
                    "notes": await _note_texts(case.id),
                },
            )
        )
    items.sort(key=lambda item: (item[0], item[1]))
    return [item for _, _, item in items]
