"""Tortoise models: the data Pulse keeps. The schema comes from the migrations in pulse/migrations."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Team(Model):
    """A team of the organisation: teams form a tree through their parent."""

    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    parent: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="children", null=True, on_delete=fields.RESTRICT
    )
    owner: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="owned_teams", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "team"


class User(Model):
    """A person who signs in: admin, hr, manager (scoped to teams) or analyst."""

    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    display_name = fields.CharField(max_length=200, default="")
    locale = fields.CharField(max_length=8, default="en")
    role = fields.CharField(max_length=16)
    password_hash = fields.CharField(max_length=255)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "app_user"


class Session(Model):
    """A signed-in browser: only the SHA-256 of its cookie is stored, so a database leak signs nobody in."""

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    client = fields.CharField(max_length=64, default="")
    user_agent = fields.CharField(max_length=255, default="")

    class Meta:
        table = "session"


class SignInThrottle(Model):
    """Sign-in attempts in the current window of one subject: a client address, an account, or an account from
    one client (see pulse/throttle.py). Rows are locked while they are counted, so parallel guesses queue."""

    id = fields.BigIntField(primary_key=True)
    subject = fields.CharField(max_length=80, unique=True)  # kind and a hash: no e-mail or address in clear
    attempts = fields.IntField(default=0)
    window_start = fields.DatetimeField(db_index=True)
    next_at = fields.DatetimeField(null=True)  # an account's next password check waits until then

    class Meta:
        table = "signin_throttle"


class RateLimit(Model):
    """Events one client made in one fixed window of a rate limiter (see pulse/ratelimit.py), shared by every
    process. The subject is an HMAC of the limiter's name and the address; rows older than two windows go."""

    id = fields.BigIntField(primary_key=True)
    subject = fields.CharField(max_length=64)
    window_start = fields.BigIntField()  # seconds since the epoch, a multiple of the window
    hits = fields.IntField(default=0)

    class Meta:
        table = "rate_limit"
        unique_together = (("subject", "window_start"),)
        indexes = (("window_start",),)


class UserTeam(Model):
    """A manager scope: the teams, with their sub-teams, whose data this user may see."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="team_links", on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="user_links", on_delete=fields.CASCADE
    )

    class Meta:
        table = "user_team"
        unique_together = (("user", "team"),)


class ApiKey(Model):
    """A key for the REST API: only its SHA-256 is stored, and its prefix finds it."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    prefix = fields.CharField(max_length=16, unique=True)
    key_hash = fields.CharField(max_length=64)
    scopes = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_key"


class Contact(Model):
    """A customer, as the CRM knows them."""

    id = fields.IntField(primary_key=True)
    external_id = fields.CharField(max_length=200, unique=True)
    email = fields.CharField(max_length=254, default="")
    name = fields.CharField(max_length=200, default="")
    locale = fields.CharField(max_length=8, null=True)
    timezone = fields.CharField(max_length=64, null=True)
    attributes = fields.JSONField(default=dict)
    first_purchase_at = fields.DatetimeField(null=True)
    opted_out_at = fields.DatetimeField(null=True)
    bounced_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "contact"
        indexes = (("email",),)


class Employee(Model):
    """A roster entry, never joined to answers: employee responses carry no link back here."""

    id = fields.IntField(primary_key=True)
    external_id = fields.CharField(max_length=200, unique=True)
    email = fields.CharField(max_length=254)
    name = fields.CharField(max_length=200, default="")
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="employees", null=True, on_delete=fields.SET_NULL
    )
    locale = fields.CharField(max_length=8, null=True)
    timezone = fields.CharField(max_length=64, null=True)
    start_date = fields.DateField(null=True)
    attributes = fields.JSONField(default=dict)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "employee"


class SurveyVersion(Model):
    """A survey definition as it was loaded: responses point at the version they answered."""

    id = fields.IntField(primary_key=True)
    survey_id = fields.CharField(max_length=64)
    checksum = fields.CharField(max_length=64)
    definition = fields.JSONField()
    loaded_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "survey_version"
        unique_together = (("survey_id", "checksum"),)


class PulseRound(Model):
    """One round of an employee pulse: which questions it asks, when it opens, reminds and closes."""

    id = fields.IntField(primary_key=True)
    survey_id = fields.CharField(max_length=64)
    number = fields.IntField()
    questions = fields.JSONField()
    opens_at = fields.DatetimeField()
    remind_at = fields.DatetimeField()
    closes_at = fields.DatetimeField()
    status = fields.CharField(max_length=16, default="open")  # open -> closed
    reminded = fields.BooleanField(default=False)
    invited = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "pulse_round"
        unique_together = (("survey_id", "number"),)


class Touchpoint(Model):
    """An event from an outside system: a replay with the same source and external id is a no-op."""

    id = fields.IntField(primary_key=True)
    source = fields.CharField(max_length=64)
    external_id = fields.CharField(max_length=200)
    type = fields.CharField(max_length=64)
    occurred_at = fields.DatetimeField()
    contact: fields.ForeignKeyRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name="touchpoints", on_delete=fields.CASCADE
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="touchpoints", null=True, on_delete=fields.SET_NULL
    )
    agent = fields.CharField(max_length=200, null=True)
    channel = fields.CharField(max_length=64, null=True)
    stage = fields.CharField(max_length=64, null=True)
    attributes = fields.JSONField(default=dict)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "touchpoint"
        unique_together = (("source", "external_id"),)
        indexes = (("contact_id", "occurred_at"),)


class Invitation(Model):
    """Who was asked what, when and in which language, or why they were not asked (skip_reason)."""

    id = fields.IntField(primary_key=True)
    survey_id = fields.CharField(max_length=64)
    contact: fields.ForeignKeyNullableRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name="invitations", null=True, on_delete=fields.CASCADE
    )
    employee: fields.ForeignKeyNullableRelation[Employee] = fields.ForeignKeyField(
        "models.Employee", related_name="invitations", null=True, on_delete=fields.CASCADE
    )
    touchpoint: fields.ForeignKeyNullableRelation[Touchpoint] = fields.ForeignKeyField(
        "models.Touchpoint", related_name="invitations", null=True, on_delete=fields.CASCADE
    )
    round: fields.ForeignKeyNullableRelation[PulseRound] = fields.ForeignKeyField(
        "models.PulseRound", related_name="invitations", null=True, on_delete=fields.CASCADE
    )
    locale = fields.CharField(max_length=8)
    # scheduled -> sent -> answered / expired; or skipped / suppressed / failed
    status = fields.CharField(max_length=16)
    skip_reason = fields.CharField(max_length=32, null=True)
    send_at = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)
    answered_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    # employee pulses: the SHA-256 of the link's opaque token (the token itself says nothing and is never stored)
    token_hash = fields.CharField(max_length=64, null=True, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "invitation"
        # the last: the overview's response rate counts the e-mails sent in its period (and, for a team, their
        # touchpoints') from the index alone; the at-risk signal reads its window of sent invitations by it. An
        # invitation not sent yet (NULL) is placed by its touchpoint, in the order ingestion makes them, so this
        # index takes each new row at its end rather than at a random place
        indexes = (
            ("contact_id", "send_at"),
            ("employee_id", "send_at"),
            ("status", "send_at"),
            ("sent_at", "touchpoint_id", "status", "contact_id"),
        )


class Response(Model):
    """An answer with a snapshot of the dimensions it is analysed by, so later edits rewrite no history."""

    id = fields.BigIntField(primary_key=True)
    survey_id = fields.CharField(max_length=64)
    survey_version: fields.ForeignKeyNullableRelation[SurveyVersion] = fields.ForeignKeyField(
        "models.SurveyVersion", related_name="responses", null=True, on_delete=fields.SET_NULL
    )
    # null for anonymous employee answers and public-link answers
    invitation: fields.OneToOneNullableRelation[Invitation] = fields.OneToOneField(
        "models.Invitation", related_name="response", null=True, on_delete=fields.SET_NULL
    )
    question_id = fields.CharField(max_length=64)
    score = fields.SmallIntField()
    scores = fields.JSONField(default=dict)
    comment = fields.TextField(default="")
    locale = fields.CharField(max_length=8)
    answered_at = fields.DatetimeField(null=True)
    day = fields.DateField()
    confirmed = fields.BooleanField(default=False)
    touchpoint_type = fields.CharField(max_length=64, null=True)
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="responses", null=True, on_delete=fields.SET_NULL
    )
    channel = fields.CharField(max_length=64, null=True)
    stage = fields.CharField(max_length=64, null=True)
    dimensions = fields.JSONField(default=dict)
    history = fields.JSONField(default=list)
    # a response counts once it is confirmed: by a comment, or by no conflicting score until provisional_until
    provisional_until = fields.DatetimeField(null=True)
    discarded = fields.BooleanField(default=False, db_default=False)
    # no longer written: employee answers live in PulseAnswer (migration 0005 moved them there). The column stays
    # because dropping it rebuilds this table on SQLite, which fires the ON DELETE of the cases that point here.
    round: fields.ForeignKeyNullableRelation[PulseRound] = fields.ForeignKeyField(
        "models.PulseRound", related_name="responses", null=True, on_delete=fields.CASCADE
    )
    # public-link answers have no invitation: the hash of their page's nonce keeps one response per page view
    link_key = fields.CharField(max_length=64, null=True, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "response"
        # updated_at: the newest change is one index read, the version of every cache of answers (pulse/insights.py)
        indexes = (("survey_id", "day"), ("team_id", "day"), ("updated_at",))


class PulseAnswer(Model):
    """One employee's answer to one question of a pulse round, stored so that it cannot lead back to the person.

    No employee, invitation, address, language or time is kept, only what results are cut by. The id is random, and
    when the round closes its rows are rewritten in shuffled order in one transaction, so neither ids nor the
    order of rows on disk follow the order in which people answered.
    """

    id = fields.UUIDField(primary_key=True)
    round: fields.ForeignKeyRelation[PulseRound] = fields.ForeignKeyField(
        "models.PulseRound", related_name="answers", on_delete=fields.CASCADE
    )
    question_id = fields.CharField(max_length=64)
    score = fields.SmallIntField()
    comment = fields.TextField(default="")
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="pulse_answers", null=True, on_delete=fields.SET_NULL
    )
    dimensions = fields.JSONField(default=dict)  # location, role_family, tenure band: nothing finer

    class Meta:
        table = "pulse_answer"
        indexes = (("round_id", "question_id"),)


class FlaggedAttempt(Model):
    """An answer that looked automated (honeypot, too fast, flapping scores, bad nonce): kept, never counted."""

    id = fields.BigIntField(primary_key=True)
    survey_id = fields.CharField(max_length=64)
    invitation: fields.ForeignKeyNullableRelation[Invitation] = fields.ForeignKeyField(
        "models.Invitation", related_name="flagged_attempts", null=True, on_delete=fields.CASCADE
    )
    reason = fields.CharField(max_length=32)
    score = fields.SmallIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "flagged_attempt"
        indexes = (("created_at",),)


class WebhookDelivery(Model):
    """An event for the configured webhook, delivered by the worker with retries (an outbox for HTTP)."""

    id = fields.BigIntField(primary_key=True)
    event = fields.CharField(max_length=32)
    payload = fields.JSONField()
    status = fields.CharField(max_length=16, default="pending")  # pending -> sending -> delivered / failed
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    claimed_at = fields.DatetimeField(null=True)
    claimed_by = fields.CharField(max_length=64, null=True)
    last_error = fields.TextField(null=True)
    delivered_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhook_delivery"
        indexes = (("status", "next_attempt_at"),)


class DailyRollup(Model):
    """Per local day, survey question and dimension value: how many answers gave each score from 0 to 10."""

    id = fields.BigIntField(primary_key=True)
    day = fields.DateField()
    survey_id = fields.CharField(max_length=64)
    question_id = fields.CharField(max_length=64)
    dimension = fields.CharField(max_length=64)
    value = fields.CharField(max_length=200)
    c0 = fields.IntField(default=0)
    c1 = fields.IntField(default=0)
    c2 = fields.IntField(default=0)
    c3 = fields.IntField(default=0)
    c4 = fields.IntField(default=0)
    c5 = fields.IntField(default=0)
    c6 = fields.IntField(default=0)
    c7 = fields.IntField(default=0)
    c8 = fields.IntField(default=0)
    c9 = fields.IntField(default=0)
    c10 = fields.IntField(default=0)

    class Meta:
        table = "daily_rollup"
        unique_together = (("survey_id", "question_id", "dimension", "value", "day"),)


class FollowUpCase(Model):
    """An unhappy answer that someone owns until it is resolved."""

    id = fields.IntField(primary_key=True)
    response: fields.ForeignKeyNullableRelation[Response] = fields.ForeignKeyField(
        "models.Response", related_name="cases", null=True, on_delete=fields.SET_NULL
    )
    contact: fields.ForeignKeyNullableRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name="cases", null=True, on_delete=fields.SET_NULL
    )
    team: fields.ForeignKeyNullableRelation[Team] = fields.ForeignKeyField(
        "models.Team", related_name="cases", null=True, on_delete=fields.SET_NULL
    )
    owner: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="cases", null=True, on_delete=fields.SET_NULL
    )
    # open -> in_progress -> resolved / closed_no_action
    status = fields.CharField(max_length=20, default="open")
    due_at = fields.DatetimeField()
    escalated_at = fields.DatetimeField(null=True)
    survey_id = fields.CharField(max_length=64, default="", db_default="")
    score = fields.SmallIntField(null=True)
    # answered through a public link: anyone may have written it, and such cases are capped per team and hour
    from_link = fields.BooleanField(default=False, db_default=False)
    # the one follow-up question after resolution (pulse/recovery.py): when Pulse decided it, and its invitation
    # (sent or skipped with a reason); a plain id, so erasing the customer's invitations leaves the case alone
    recovery_decided_at = fields.DatetimeField(null=True)
    recovery_invitation_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "followup_case"
        # the last two: a follow-up answer finds its case; the recovery report reads the cases opened in a period
        indexes = (("status", "due_at"), ("owner_id", "status"), ("recovery_invitation_id",), ("created_at",))


class CaseNote(Model):
    """A note on a case: a person's words (kind "note", in `body`), or an event Pulse records as a code and its
    data, told in each reader's language by pulse.case_notes: "status" {from, to}, "owner" and "escalated"
    {user_id}, "score_changed" {from, to, survey, comment}."""

    id = fields.IntField(primary_key=True)
    case: fields.ForeignKeyRelation[FollowUpCase] = fields.ForeignKeyField(
        "models.FollowUpCase", related_name="notes", on_delete=fields.CASCADE
    )
    author: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="case_notes", null=True, on_delete=fields.SET_NULL
    )
    kind = fields.CharField(max_length=16, default="note", db_default="note")
    body = fields.TextField()  # a person's note; empty for an event
    data = fields.JSONField(default=dict, db_default="{}")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "case_note"


class OutboxMessage(Model):
    """An e-mail waiting to be sent, being sent, sent or given up on."""

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=32)
    invitation: fields.ForeignKeyNullableRelation[Invitation] = fields.ForeignKeyField(
        "models.Invitation", related_name="messages", null=True, on_delete=fields.CASCADE
    )
    to_email = fields.CharField(max_length=254)
    locale = fields.CharField(max_length=8)
    payload = fields.JSONField(default=dict)
    # pending -> sending -> sent; or pending again (retry), failed, suppressed
    status = fields.CharField(max_length=16, default="pending")
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    claimed_at = fields.DatetimeField(null=True)
    claimed_by = fields.CharField(max_length=64, null=True)
    last_error = fields.TextField(null=True)
    message_id = fields.CharField(max_length=255, unique=True)
    sent_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "outbox_message"
        # by invitation: cancelling a superseded invitation's e-mail (ingest) and erasing a person's; without it
        # SQLite walks every pending e-mail for each batch of touchpoints (bench/README.md, ingest)
        indexes = (("status", "next_attempt_at"), ("invitation_id",))


class WorkerHeartbeat(Model):
    """One row per worker process (host:pid), written after each loop of its outbox: when it last finished a loop
    and what the SMTP relay last said. Kept in the database, so /healthz and the Delivery page of any web process
    see workers that run on other machines."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=128, unique=True)
    started_at = fields.DatetimeField()
    last_loop_at = fields.DatetimeField()
    last_smtp_ok_at = fields.DatetimeField(null=True)
    last_smtp_error = fields.TextField(null=True)
    last_smtp_error_at = fields.DatetimeField(null=True)
    # since when the relay has failed with no success in between (None while it works)
    smtp_failing_since = fields.DatetimeField(null=True)
    sent = fields.BigIntField(default=0)
    refused = fields.BigIntField(default=0)
    connection_failures = fields.BigIntField(default=0)

    class Meta:
        table = "worker_heartbeat"


class HealthProbe(Model):
    """The one row /healthz rewrites to learn whether the database still accepts writes."""

    id = fields.IntField(primary_key=True)
    checked_at = fields.DatetimeField()

    class Meta:
        table = "health_probe"


class LoyaltyLatest(Model):
    """Each contact's latest counted answer to each survey, per team it was given to, kept in step with the
    answers (pulse/loyalty.py), so the loyalty quadrant reads one row per contact, survey and team instead of
    every answer."""

    id = fields.BigIntField(primary_key=True)
    contact: fields.ForeignKeyRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name="latest_answers", on_delete=fields.CASCADE
    )
    survey_id = fields.CharField(max_length=64)
    # the answer's team, 0 when it had none: a unique key treats NULLs as distinct, so NULL could not be upserted
    team_id = fields.IntField(default=0, db_default=0)
    score = fields.SmallIntField()
    answered_at = fields.DatetimeField()
    day = fields.DateField()
    response_id = fields.BigIntField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "loyalty_latest"
        unique_together = (("contact", "survey_id", "team_id"),)
        indexes = (("team_id", "survey_id"),)


class LoyaltyStanding(Model):
    """Where a contact stands on loyalty for one scope: their latest CSAT and NPS given to the whole organisation
    (scope 0) or to a team and its sub-teams (scope = the team's id), and the quadrant the pair falls in. Kept in
    step with `loyalty_latest` (pulse/loyalty.py), so the quadrant's counts and each page of its list are index
    reads."""

    id = fields.BigIntField(primary_key=True)
    scope_id = fields.IntField()  # 0: every answer; a team's id: the answers given to it and its sub-teams
    contact: fields.ForeignKeyRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name="loyalty_standings", on_delete=fields.CASCADE
    )
    # each kind's latest answer in the scope (null until the contact gave one); team ids 0 for no team
    csat = fields.SmallIntField(null=True)
    csat_at = fields.DatetimeField(null=True)
    csat_response_id = fields.BigIntField(null=True)
    csat_team_id = fields.IntField(null=True)
    nps = fields.SmallIntField(null=True)
    nps_at = fields.DatetimeField(null=True)
    nps_response_id = fields.BigIntField(null=True)
    nps_team_id = fields.IntField(null=True)
    quadrant = fields.CharField(max_length=24, null=True)  # pulse.insights.QUADRANTS; null without both kinds
    last_answer_at = fields.DatetimeField(null=True)  # the later of the two

    class Meta:
        table = "loyalty_standing"
        unique_together = (("scope_id", "contact"),)
        # counts per quadrant and a page of one quadrant, newest first, are ranges of this index
        indexes = (("scope_id", "quadrant", "last_answer_at", "contact_id"),)


class AuditEvent(Model):
    """Who did what to personal data or access, when and from where (pulse/audit.py). Appended, never edited,
    and pruned only by its own retention setting."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    actor = fields.CharField(max_length=254)  # a user's e-mail, "api key <name>", "command line", "worker"
    action = fields.CharField(max_length=64)  # e.g. signin.failed, user.role_changed, contact.erased
    target = fields.CharField(max_length=254, default="")  # what it was done to, in words an admin reads
    source = fields.CharField(max_length=64, default="")  # the client's address, or "" for commands and the worker
    details = fields.JSONField(default=dict)

    class Meta:
        table = "audit_event"
        indexes = (("at",), ("action", "at"), ("actor", "at"))


class ScheduledRun(Model):
    """When a once-a-day job last started (retention): of several workers, only the one whose guarded UPDATE
    moved `last_started_at` runs it."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    last_started_at = fields.DatetimeField()

    class Meta:
        table = "scheduled_run"


class Suppression(Model):
    """An erased person (pulse/privacy.py): only HMAC-SHA256 under the secret key of their normalised e-mail
    address or of their external id, so ingestion can refuse them without Pulse keeping who they were."""

    id = fields.BigIntField(primary_key=True)
    digest = fields.CharField(max_length=64, unique=True)
    kind = fields.CharField(max_length=16)  # contact | employee
    # a random id shared by the rows of one erasure: lifting the address lifts the external id too
    erasure = fields.CharField(max_length=32, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "suppression"
