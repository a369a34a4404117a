from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
import re
from json import dumps, loads
from tortoise import fields

# The English sentences pulse.followups wrote before notes had a kind; what none of them matches stays a note.
STATUSES = ("open", "in_progress", "resolved", "closed_no_action")
STATUS = re.compile(r"Status: (\w+) → (\w+)\.")
OWNER = re.compile(r"Owner: (\S+@\S+)\.")
ESCALATED = re.compile(r"Overdue: escalated to (\S+@\S+)\.")
SCORE = re.compile(r"The customer changed the score from (\d+) to (\d+)\.(?: Comment: (.*))?", re.DOTALL)


def event_of(body: str, author_id, user_ids: dict[str, int], survey_id) -> tuple[str, dict] | None:
    """(kind, data) for a sentence Pulse wrote, or None for a person's note."""
    if (found := STATUS.fullmatch(body)) and found[1] in STATUSES and found[2] in STATUSES:
        return "status", {"from": found[1], "to": found[2]}
    if (found := OWNER.fullmatch(body)) and found[1].lower() in user_ids:
        return "owner", {"user_id": user_ids[found[1].lower()]}
    if author_id is not None:  # only Pulse itself escalated or recorded a customer's change
        return None
    if (found := ESCALATED.fullmatch(body)) and found[1].lower() in user_ids:
        return "escalated", {"user_id": user_ids[found[1].lower()]}
    if found := SCORE.fullmatch(body):
        return "score_changed", {"from": int(found[1]), "to": int(found[2]), "survey": survey_id,
                                 "comment": found[3] or ""}
    return None


async def notes_to_events(apps, schema_editor):
    """Turn the English sentences of earlier system notes into events, so they read in each reader's language."""
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    user_ids = {row["email"].lower(): row["id"] for row in await client.execute_query_dict(
        "SELECT id, email FROM app_user")}
    rows = await client.execute_query_dict(
        "SELECT n.id, n.body, n.author_id, c.survey_id FROM case_note n JOIN followup_case c ON c.id = n.case_id"
        " WHERE n.kind = 'note'"
    )
    update = ("UPDATE case_note SET kind = $1, data = $2, body = '' WHERE id = $3" if postgres
              else "UPDATE case_note SET kind = ?, data = ?, body = '' WHERE id = ?")
    for row in rows:
        event = event_of(row["body"] or "", row["author_id"], user_ids, row["survey_id"])
        if event is not None:
            kind, data = event
            await client.execute_query(update, [kind, dumps(data, separators=(",", ":")), row["id"]])


class Migration(migrations.Migration):
    dependencies = [('models', '0008_worker_heartbeat')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='CaseNote',
            options={'table': 'case_note', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A note on a case: a person\'s words (kind "note", in `body`), or an event Pulse records as a code and its'},
        ),
        ops.AddField(
            model_name='CaseNote',
            name='data',
            field=fields.JSONField(default=dict, db_default='{}', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='CaseNote',
            name='kind',
            field=fields.CharField(default='note', db_default='note', max_length=16),
        ),
        ops.RunPython(notes_to_events, atomic=True),
    ]
