"""A contact's timeline: touchpoints, invitations (with why one was skipped), answers and cases, in time order."""

from __future__ import annotations

from pulse.catalog import Catalog
from pulse.models import CaseNote, Contact, FollowUpCase, Invitation, Response, Touchpoint


async def events(contact: Contact, catalog: Catalog) -> list[dict]:
    items: list[tuple[str, int, dict]] = []
    for tp in await Touchpoint.filter(contact_id=contact.id).select_related("team"):
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
    invitations = await Invitation.filter(contact_id=contact.id)
    for inv in invitations:
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
    responses = await Response.filter(invitation_id__in=[i.id for i in invitations], discarded=False)
    for response in responses:
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
    for case in await FollowUpCase.filter(contact_id=contact.id).select_related("owner"):
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
                    "notes": [n.body for n in await CaseNote.filter(case_id=case.id).order_by("id")],
                },
            )
        )
    items.sort(key=lambda item: (item[0], item[1]))
    return [item for _, _, item in items]
