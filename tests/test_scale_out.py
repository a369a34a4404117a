"""Scale-out on PostgreSQL: two `pulse serve --no-worker` and two `pulse worker` processes share one database.

One cluster of real subprocesses serves the whole module, with a real SMTP sink. Before the tests run, the
employee roster is loaded (so both workers, started together, find a round due at once) and ~2,000 touchpoints
are posted alternately to both web processes. Then: every e-mail is sent exactly once, every acknowledged answer
(posted alternately to both web processes, some to both at once) counts once and the rollups equal a
recomputation, the public link's rate limit holds across processes, and exactly one round was opened.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager

from pulse import rollups
from pulse.app import create_app
from pulse.models import Invitation, OutboxMessage, PulseRound, Response
from tests.conftest import ENGINE, ROOT, SmtpSink, event, free_port, make_settings
from tests.test_faults import deliveries
from tests.test_logs_no_tokens import environment, links, path_of, pulse
from tests.test_logs_no_tokens import field as form_field

pytestmark = pytest.mark.skipif(
    ENGINE != "postgres", reason="processes on several machines share PostgreSQL; SQLite has one file per machine"
)

TOUCHPOINTS = 2000
BATCH = 100  # touchpoints per API request
EMPLOYEES = 12
ANSWERS = 300
TWICE_EVERY = 10  # every tenth answer is also posted to the other process at the same moment (a double click)
LINK_LIMIT = 10  # PULSE_LINK_RATE_LIMIT: answers per minute one client may post through public links
LINK_POSTS = 3 * LINK_LIMIT
SENT_WITHIN = 60  # seconds for every e-mail to reach the sink
SAVED = "Thank you! Your answer is saved."


@dataclass
class Cluster:
    database_url: str
    smtp: SmtpSink
    webs: list[str]  # base URLs of the two web processes
    logs: dict[str, Path]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    customers: list[str] = field(default_factory=list)
    employees: list[str] = field(default_factory=list)
    ready_after: float = 0.0  # seconds from the first process started to the last e-mail received

    def log_text(self) -> str:
        return "\n".join(f"--- {name}\n{path.read_text(errors='replace')[-3000:]}" for name, path in self.logs.items())


def spawn(environ: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", *args], env=environ, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )


def answering(url: str, process: subprocess.Popen, cluster: Cluster) -> None:
    """Wait until the web process at `url` answers /healthz."""
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, cluster.log_text()
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer /healthz within 30 s\n{cluster.log_text()}"
        time.sleep(0.1)


def stop_all(processes: dict[str, subprocess.Popen]) -> dict[str, int]:
    """SIGTERM to every process at once, then wait for each (SIGKILL after 15 s); their exit codes."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = {}
    for name, process in processes.items():
        try:
            codes[name] = process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            codes[name] = "killed: no exit within 15 s of SIGTERM"
    return codes


def customer_event(number: int, occurred_at: str) -> dict:
    return event(
        number,
        occurred_at=occurred_at,
        contact_locale="en",
        contact_timezone="UTC",
        contact_email=f"customer{number}@example.com",
    )


@pytest.fixture(scope="module")
def cluster(databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("scale_out")
    database_url = databases.fresh(workdir)
    smtp = SmtpSink()
    controller = Controller(smtp, hostname="127.0.0.1", port=free_port(), decode_data=False)
    controller.start()
    smtp.port = controller.port
    ports = [free_port(), free_port()]
    found = Cluster(
        database_url=database_url,
        smtp=smtp,
        webs=[f"http://127.0.0.1:{port}" for port in ports],
        logs={name: workdir / f"{name}.log" for name in ("web-1", "web-2", "worker-1", "worker-2")},
    )
    environ = {
        **environment(database_url, smtp, ports[0]),
        "PULSE_LOG_LEVEL": "warning",
        "PULSE_FATIGUE_DAYS": "0",
        "PULSE_SAMPLING_OVERRIDE": "1",
        "PULSE_LINK_RATE_LIMIT": str(LINK_LIMIT),
    }
    began = time.monotonic()
    try:
        api_key = pulse(
            environ, workdir, "apikeys", "create", "--name", "hris", "--scope", "touchpoints:write",
            "--scope", "employees:write",
        ).splitlines()[-1]  # fmt: skip
        bearer = {"authorization": f"Bearer {api_key}"}
        for number, port in enumerate(ports, 1):
            found.processes[f"web-{number}"] = spawn(
                environ, found.logs[f"web-{number}"], "serve", "--no-worker", "--port", str(port)
            )
        for number, url in enumerate(found.webs, 1):
            answering(url, found.processes[f"web-{number}"], found)

        # the roster first: both workers, started together, find a round due at once
        found.employees = [f"employee{n}@example.com" for n in range(EMPLOYEES)]
        roster = [
            {"external_id": f"E-{n}", "email": email, "name": f"Employee {n}", "locale": "en", "timezone": "UTC"}
            for n, email in enumerate(found.employees)
        ]
        reply = httpx.post(f"{found.webs[0]}/api/v1/employees", json=roster, headers=bearer, timeout=30)
        assert reply.status_code == 200 and {r["status"] for r in reply.json()["results"]} == {"created"}, reply.text
        for number in (1, 2):
            found.processes[f"worker-{number}"] = spawn(environ, found.logs[f"worker-{number}"], "worker")

        # the touchpoints, alternately to both web processes, while the workers send
        occurred = (datetime.now(UTC) - timedelta(minutes=90)).isoformat()  # past the survey's delay
        webs = itertools.cycle(found.webs)
        for first in range(0, TOUCHPOINTS, BATCH):
            batch = [customer_event(n, occurred) for n in range(first, first + BATCH)]
            reply = httpx.post(f"{next(webs)}/api/v1/touchpoints", json=batch, headers=bearer, timeout=60)
            assert reply.status_code == 202, reply.text
            assert {r["status"] for r in reply.json()["results"]} == {"invited"}, reply.text
        found.customers = [f"customer{n}@example.com" for n in range(TOUCHPOINTS)]

        deadline = time.monotonic() + SENT_WITHIN
        while len(smtp.received) < TOUCHPOINTS + EMPLOYEES and time.monotonic() < deadline:
            time.sleep(0.2)
        found.ready_after = time.monotonic() - began
        yield found
    finally:
        codes = stop_all(found.processes)
        controller.stop()
    assert all(process.poll() is not None for process in found.processes.values())
    # uvicorn raises the signal again once its graceful shutdown is done, so `pulse serve` ends by SIGTERM
    clean = {0, -signal.SIGTERM}
    assert set(codes.values()) <= clean, f"not a clean stop on SIGTERM: {codes}\n{found.log_text()}"


@pytest.fixture
async def records(cluster: Cluster, catalog) -> AsyncIterator:
    """This process's own connection to the cluster's database, to read what the processes stored."""
    application = create_app(make_settings(cluster.database_url), catalog=catalog)
    async with LifespanManager(application):
        yield application


def test_every_email_is_sent_exactly_once(cluster: Cluster):
    counts = deliveries(cluster.smtp)
    duplicates = {message_id: n for message_id, n in counts.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} Message-IDs received more than once, e.g. {list(duplicates)[:3]}"
    recipients = Counter(m["To"] for m in cluster.smtp.received)
    missing = [to for to in cluster.customers + cluster.employees if recipients[to] == 0]
    assert not missing, f"{len(missing)} invitations not e-mailed within {SENT_WITHIN} s\n{cluster.log_text()}"
    assert {to: n for to, n in recipients.items() if n > 1} == {}
    assert sum(recipients.values()) == TOUCHPOINTS + EMPLOYEES
    print(f"cluster up, {TOUCHPOINTS} touchpoints ingested and all e-mails received after {cluster.ready_after:.1f} s")


async def test_the_outbox_holds_exactly_the_messages_received(cluster: Cluster, records):
    invited = await OutboxMessage.filter(to_email__in=cluster.customers + cluster.employees)
    assert sorted(m.message_id for m in invited) == sorted(deliveries(cluster.smtp))
    assert {m.status for m in invited} == {"sent"}
    assert await Invitation.filter(survey_id="csat").count() == TOUCHPOINTS


def score_link(message, score: int) -> str:
    return next(url for url in links(message) if "/s/" in url and httpx.URL(url).params.get("score") == str(score))


async def test_every_acknowledged_answer_counts_once_and_the_rollups_equal_a_recomputation(
    cluster: Cluster, records, catalog
):
    by_recipient = {m["To"]: m for m in cluster.smtp.received}
    chosen = [to for to in cluster.customers if to in by_recipient][:ANSWERS]
    assert len(chosen) == ANSWERS, "too few invitations were e-mailed to answer"
    gate = asyncio.Semaphore(8)
    async with httpx.AsyncClient(timeout=30) as http:

        async def page(number: int, to: str) -> tuple[str, dict]:
            score = 1 + number % 5
            path = path_of(score_link(by_recipient[to], score))
            async with gate:
                shown = await http.get(cluster.webs[number % 2] + path)
            assert shown.status_code == 200, shown.text
            # half with a comment (counted at once), half without (counted once the workers confirm it)
            comment = f"answer {number}" if number % 2 else ""
            return httpx.URL(path).path, {"score": str(score), "comment": comment, "nonce": form_field(shown, "nonce")}

        async def post(base: str, path: str, form: dict) -> bool:
            async with gate:
                reply = await http.post(base + path, data=form)
            return reply.status_code // 100 == 2 and SAVED in reply.text

        forms = await asyncio.gather(*(page(n, to) for n, to in enumerate(chosen)))
        await asyncio.sleep(1.1)  # a person takes at least a second to answer; faster is flagged as a bot
        posts = []
        for number, (path, form) in enumerate(forms):
            posts.append((number, post(cluster.webs[number % 2], path, form)))
            if number % TWICE_EVERY == 0:
                posts.append((number, post(cluster.webs[(number + 1) % 2], path, form)))
        saved = await asyncio.gather(*(coroutine for _, coroutine in posts))
    acknowledged = {number for (number, _), ok in zip(posts, saved, strict=True) if ok}
    assert acknowledged == set(range(ANSWERS)), f"not acknowledged: {sorted(set(range(ANSWERS)) - acknowledged)}"

    async def settled() -> bool:
        return not await Response.filter(confirmed=False, discarded=False).exists()

    deadline = time.monotonic() + 20
    while not await settled():
        assert time.monotonic() < deadline, "answers without a comment were not confirmed within 20 s"
        await asyncio.sleep(0.2)

    invitation_of = dict(await Invitation.filter(survey_id="csat").values_list("contact__email", "id"))
    answered = {invitation_of[chosen[number]]: 1 + number % 5 for number in acknowledged}
    counted = await Response.filter(invitation_id__in=list(answered), confirmed=True, discarded=False).values_list(
        "invitation_id", "score"
    )
    per_invitation = Counter(invitation_id for invitation_id, _ in counted)
    assert {i: n for i, n in per_invitation.items() if n != 1} == {}, "an answer counted more than once"
    assert dict(counted) == answered
    assert await Response.filter(invitation_id__isnull=False).count() == ANSWERS
    settings = make_settings(cluster.database_url)
    expected = rollups.expected_from(await Response.all(), await rollups.team_scopes(), settings.segment_attributes)
    assert await rollups.stored() == expected


async def test_the_link_rate_limit_holds_across_web_processes(cluster: Cluster, records):
    before = await Response.filter(link_key__isnull=False).count()
    async with httpx.AsyncClient(timeout=30) as http:
        nonces = []
        for number in range(LINK_POSTS):
            shown = await http.get(f"{cluster.webs[number % 2]}/l/csat")
            assert shown.status_code == 200, shown.text
            nonces.append(form_field(shown, "nonce"))
        await asyncio.sleep(1.1)
        statuses = []
        began = time.monotonic()
        for number, nonce in enumerate(nonces):
            reply = await http.post(
                f"{cluster.webs[number % 2]}/l/csat", data={"score": "4", "comment": "", "nonce": nonce}
            )
            assert reply.status_code in (200, 429), reply.text
            assert reply.status_code == 429 or SAVED in reply.text, reply.text
            statuses.append(reply.status_code)
        took = time.monotonic() - began
    accepted = statuses.count(200)
    assert took < 60, "the posts must fall within one window of the limit"
    assert 0 < accepted <= LINK_LIMIT, (
        f"{accepted} of {LINK_POSTS} answers from one client accepted within {took:.1f} s through two processes; "
        f"the limit is {LINK_LIMIT} a minute"
    )
    # each accepted answer is stored once (a refused one not at all)
    assert await Response.filter(link_key__isnull=False).count() - before == accepted


async def test_one_round_is_opened_with_one_pulse_email_per_employee(cluster: Cluster, records):
    await asyncio.sleep(2)  # two more schedule steps of each worker: a second round would be opened by now
    rounds = await PulseRound.all()
    assert len(rounds) == 1, [(r.id, r.number, r.opens_at) for r in rounds]
    assert rounds[0].invited == EMPLOYEES
    assert await Invitation.filter(round_id=rounds[0].id).count() == EMPLOYEES
    recipients = Counter(m["To"] for m in cluster.smtp.received if m["To"] in set(cluster.employees))
    assert recipients == dict.fromkeys(cluster.employees, 1)


def test_no_process_logged_an_error(cluster: Cluster):
    for name, path in cluster.logs.items():
        text = path.read_text(errors="replace")
        problems = [line for line in text.splitlines() if re.search(r"Traceback|ERROR|failing", line)]
        assert not problems, f"{name}:\n" + "\n".join(problems[:10])
