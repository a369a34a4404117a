"""Two workers running the schedule at the same moment, each on its own connection (as two processes): a round
opens once, reminds once and closes (and shuffles) once. The loser does nothing and raises nothing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from pulse import engagement
from pulse.models import Employee, Invitation, OutboxMessage, PulseAnswer, PulseRound
from pulse.outbox import Dispatcher
from pulse.rendering import environment
from tests.conftest import old_nonce, pulse_link
from tests.processes import two_workers


async def test_two_workers_open_one_round_remind_once_and_close_it_once(
    mail_app, mail_client, mail_settings, catalog, org, smtp
):
    for n in range(1, 7):
        await Employee.create(external_id=f"E{n}", email=f"e{n}@example.com", name=f"Employee {n}", team=org.warsaw)
    schedule = engagement.programme(catalog).schedule
    start = datetime.now(UTC)

    async def step_at(days: int) -> int:
        """The work both workers report for one step of the schedule, `days` after the start."""
        moment = start + timedelta(days=days)
        return sum(await two_workers(mail_settings, lambda: engagement.run_schedule(catalog, mail_settings, moment)))

    assert await step_at(0) == 1
    [pulse_round] = await PulseRound.all()
    invited = await OutboxMessage.filter(kind="pulse_invitation").values_list("to_email", flat=True)
    assert Counter(invited) == {f"e{n}@example.com": 1 for n in range(1, 7)}
    assert pulse_round.invited == 6
    await Dispatcher(mail_settings, catalog, environment()).step()
    for invitation in await Invitation.filter(employee__external_id__in=["E1", "E2"]):
        url, subject = pulse_link(mail_settings, invitation.id)
        data = {f"q_{q}": "8" for q in pulse_round.questions} | {"nonce": old_nonce(mail_settings, subject)}
        assert (await mail_client.post(url, data=data)).status_code == 200

    assert await step_at(schedule.reminder_after_days) == 1
    reminded = await OutboxMessage.filter(kind="pulse_reminder").values_list("to_email", flat=True)
    assert Counter(reminded) == {f"e{n}@example.com": 1 for n in range(3, 7)}

    assert await step_at(schedule.open_days) == 1  # one close, one shuffle
    assert (await PulseRound.get(id=pulse_round.id)).status == "closed"
    assert await PulseAnswer.filter(round_id=pulse_round.id).count() == 2 * len(pulse_round.questions)

    assert await step_at(schedule.every_days) == 1
    assert await PulseRound.all().order_by("number").values_list("number", flat=True) == [1, 2]
    assert await OutboxMessage.filter(kind="pulse_invitation").count() == 12
