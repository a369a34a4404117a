"""No token in any log line: a real `pulse serve` is driven through every link it e-mails, then its log is read.

The links are taken from the e-mails the SMTP sink received, never built here: a token is whatever Pulse sends.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx

from pulse.app import routes as app_routes
from pulse.logs import redact, secret_routes
from tests.conftest import PASSWORD, ROOT, SmtpSink, free_port, make_settings

ADMIN = "alice@example.com"
CUSTOMER = "carla@example.com"
EMPLOYEE = "ewa@example.com"
# a path under one of the token routes whose next character is not the redaction mark
TOKEN_PATH = re.compile(r"/(?:s|u|p|password-reset)/(?!…)[^\s\"']")


def environment(database_url: str, smtp: SmtpSink, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PULSE_DATABASE_URL": database_url,
        "PULSE_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "PULSE_SURVEYS_DIR": str(ROOT / "surveys"),
        "PULSE_BASE_URL": f"http://127.0.0.1:{port}",
        "PULSE_SMTP_HOST": "127.0.0.1",
        "PULSE_SMTP_PORT": str(smtp.port),
        "PULSE_QUIET_HOURS": "off",
        "PULSE_WORKER_INTERVAL": "1",
        "PULSE_LOG_LEVEL": "info",
    }


def pulse(environ: dict[str, str], cwd: Path, *args: str, stdin: str = "") -> str:
    """Run one `pulse` command to completion; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "pulse.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextlib.contextmanager
def serving(environ: dict[str, str], cwd: Path, port: int, log: Path, *options: str) -> Iterator[httpx.Client]:
    """`pulse serve` with its output appended to `log`; a client for it once /healthz answers."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", "serve", "--port", str(port), *options],
            env=environ,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 15
            while True:
                assert process.poll() is None, log.read_text(errors="replace")
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/healthz").status_code == 200:
                        break
                assert time.monotonic() < deadline, "pulse serve did not answer /healthz within 15 s"
                time.sleep(0.1)
            yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_for(check: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.1)


def links(message: EmailMessage) -> list[str]:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return re.findall(r"https?://\S+", body.get_content())


def path_of(url: str) -> str:
    return httpx.URL(url).raw_path.decode()


def token_in(url: str) -> str:
    return httpx.URL(url).path.rstrip("/").rsplit("/", 1)[1]


def field(page: httpx.Response, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', page.text).group(1)


def test_no_token_and_no_pulse_client_address_reach_the_log(empty_database_url, smtp: SmtpSink, tmp_path: Path):
    port = free_port()
    environ = environment(empty_database_url, smtp, port)
    log = tmp_path / "serve.log"
    pulse(environ, tmp_path, "migrate")
    scopes = ("--scope", "touchpoints:write", "--scope", "employees:write")
    api_key = pulse(environ, tmp_path, "apikeys", "create", "--name", "hris", *scopes).splitlines()[-1]
    pulse(environ, tmp_path, "users", "create", "--email", ADMIN, "--role", "admin", "--password-stdin", stdin=PASSWORD)
    bearer = {"authorization": f"Bearer {api_key}"}

    # 1. The systems feed Pulse while it runs without its worker (the worker opens a pulse round as soon as it
    #    starts, so the roster must be there first), and the admin asks for a password reset.
    with serving(environ, tmp_path, port, log, "--no-worker") as client:
        occurred = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        event = {
            "external_id": "T-1",
            "type": "support_ticket_closed",
            "occurred_at": occurred,
            "contact": {"external_id": "C-1", "email": CUSTOMER, "locale": "en", "timezone": "UTC"},
            "channel": "phone",
        }
        reply = client.post("/api/v1/touchpoints", json=event, headers=bearer)
        assert reply.status_code == 202 and reply.json()["results"][0]["status"] == "invited", reply.text
        roster = [{"external_id": "E-1", "email": EMPLOYEE, "name": "Ewa", "locale": "en", "timezone": "UTC"}]
        reply = client.post("/api/v1/employees", json=roster, headers=bearer)
        assert reply.json()["results"][0]["status"] == "created", reply.text
        form = client.get("/password-reset")
        reply = client.post("/password-reset", data={"email": ADMIN, "csrf_token": field(form, "csrf_token")})
        assert reply.status_code == 200

    # 2. Pulse runs for real: the worker opens the round and sends every e-mail; each link is followed.
    with serving(environ, tmp_path, port, log) as client:
        wait_for(lambda: all(smtp.by_recipient(to) for to in (CUSTOMER, EMPLOYEE, ADMIN)), "three e-mails")
        survey_links = links(smtp.by_recipient(CUSTOMER)[0])
        [pulse_link] = links(smtp.by_recipient(EMPLOYEE)[0])
        [reset_link] = links(smtp.by_recipient(ADMIN)[0])
        score_link = next(url for url in survey_links if "/s/" in url)
        unsubscribe_link = next(url for url in survey_links if "/u/" in url)

        survey = client.get(path_of(score_link))
        pulse_page = client.get(path_of(pulse_link))
        assert survey.status_code == 200 and pulse_page.status_code == 200
        time.sleep(1.1)  # a person takes at least a second to answer; faster is flagged as a bot
        reply = client.post(
            httpx.URL(score_link).path,
            data={"score": httpx.URL(score_link).params["score"], "comment": "", "nonce": field(survey, "nonce")},
        )
        assert reply.status_code == 200, reply.text
        questions = sorted(set(re.findall(r'name="q_(\w+)"', pulse_page.text)))
        answers = {f"q_{question}": "8" for question in questions}
        reply = client.post(path_of(pulse_link), data={**answers, "nonce": field(pulse_page, "nonce")})
        assert reply.status_code == 200, reply.text

        page = client.get(path_of(unsubscribe_link))
        reply = client.post(path_of(unsubscribe_link), data={"csrf_token": field(page, "csrf_token")})
        assert reply.status_code == 200, reply.text
        page = client.get(path_of(reset_link))
        new_password = "a new correct horse battery"
        reply = client.post(
            path_of(reset_link),
            data={"password": new_password, "password_again": new_password, "csrf_token": field(page, "csrf_token")},
        )
        assert reply.status_code == 303, reply.text

    text = log.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    for url in (*survey_links, pulse_link, reset_link):
        assert token_in(url) not in text, f"a token of {url} is in the log"
    assert api_key not in text
    assert not [line for line in lines if TOKEN_PATH.search(line)]
    # the access log was on: each route is written, with the path's token replaced
    for request in ("GET /s/…", "POST /s/…", "GET /u/…", "POST /u/…", "GET /password-reset/…", "POST /p/…"):
        assert any(f'"{request}' in line for line in lines), f"no access-log line for {request}"
    pulse_lines = [line for line in lines if "/p/" in line]
    assert len(pulse_lines) == 2
    assert all('- - "' in line and "127.0.0.1" not in line for line in pulse_lines), pulse_lines


def test_paths_under_a_token_route_and_links_passed_in_the_query_are_hidden():
    routes = secret_routes(app_routes(make_settings("sqlite:///unused.sqlite3")))
    assert redact(routes, "/p/abc/") == ("/p/…", True)
    assert redact(routes, "/s/abc/extra?score=3") == ("/s/…?score=3", False)
    assert redact(routes, "/password-reset/abc") == ("/password-reset/…", False)
    assert redact(routes, "/password-reset?lang=pl") == ("/password-reset?lang=pl", False)
    assert redact(routes, "/login?next=%2Fu%2Fabc&api_token=x&lang=pl") == ("/login?next=…&api_token=…&lang=pl", False)
    assert redact(routes, "/api/v1/cases/7") == ("/api/v1/cases/7", False)
