"""Two workers escalating and delivering at the same moment, each on its own connection (as two processes): an
overdue case escalates once, its owner gets one e-mail, and every webhook event reaches the receiver once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from pulse import followups, webhooks
from pulse.models import CaseNote, FollowUpCase, OutboxMessage, WebhookDelivery
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from tests.conftest import old_nonce, sent_invitation, survey_url
from tests.processes import two_workers
from tests.test_webhooks import answer, hooked, receiver  # noqa: F401 - fixtures


async def test_two_workers_escalate_an_overdue_case_once_and_its_owner_gets_one_email(
    mail_app, mail_client, mail_settings, catalog, org, smtp
):
    invitation = await sent_invitation(mail_settings, catalog)
    data = {"score": "1", "comment": "Nobody called", "nonce": old_nonce(mail_settings, f"invitation:{invitation.id}")}
    assert (await mail_client.post(survey_url(mail_settings, invitation.id), data=data)).status_code == 200
    case = await FollowUpCase.get()
    await FollowUpCase.filter(id=case.id).update(due_at=datetime.now(UTC) - timedelta(hours=1))  # now overdue
    await two_workers(mail_settings, lambda: followups.escalate_overdue(mail_settings))
    assert await CaseNote.filter(case_id=case.id, kind="escalated").count() == 1
    assert await OutboxMessage.filter(kind="case_escalated").count() == 1
    dispatchers = [Dispatcher(mail_settings, catalog, environment()) for _ in range(2)]
    await two_workers(mail_settings, lambda: dispatchers.pop().step())
    assert len(smtp.by_recipient("carol@example.com")) == 1


async def test_two_workers_deliver_each_webhook_event_once(hooked, catalog, receiver):  # noqa: F811
    app, settings = hooked
    for number in range(1, 4):
        invitation = await sent_invitation(settings, catalog, number)
        await answer(app, settings, invitation, 1, "Slow")
    assert await WebhookDelivery.all().count() == 6  # a case opened and an answer recorded, three times
    await two_workers(settings, lambda: webhooks.deliver_due(settings))
    bodies = Counter(body for _, body in receiver.requests)
    assert len(bodies) == 6 and set(bodies.values()) == {1}
    assert {d.status for d in await WebhookDelivery.all()} == {"delivered"}
