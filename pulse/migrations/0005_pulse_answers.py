from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index
import random
import uuid


async def move_employee_answers(apps, schema_editor):
    """Move employee answers out of `response` into `pulse_answer`: random ids, shuffled order, no time,
    no language; and forget which invitation a rejected pulse attempt came from."""
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    rows = await client.execute_query_dict(
        "SELECT round_id, question_id, score, comment, team_id, dimensions FROM response WHERE round_id IS NOT NULL"
    )
    random.SystemRandom().shuffle(rows)
    marks = "($1, $2, $3, $4, $5, $6, $7)" if postgres else "(?, ?, ?, ?, ?, ?, ?)"
    for row in rows:
        dims = row["dimensions"]
        if not isinstance(dims, str):
            dims = dumps(dims, separators=(",", ":"))
        await client.execute_query(
            "INSERT INTO pulse_answer (id, round_id, question_id, score, comment, team_id, dimensions) VALUES " + marks,
            [str(uuid.uuid4()) if not postgres else uuid.uuid4(), row["round_id"], row["question_id"], row["score"],
             row["comment"] or "", row["team_id"], dims],
        )
    await client.execute_query("DELETE FROM response WHERE round_id IS NOT NULL")
    await client.execute_query(
        "UPDATE flagged_attempt SET invitation_id = NULL WHERE invitation_id IN "
        "(SELECT id FROM invitation WHERE round_id IS NOT NULL)"
    )


class Migration(migrations.Migration):
    dependencies = [('models', '0004_pulse_rounds')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PulseAnswer',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('round', fields.ForeignKeyField('models.PulseRound', source_field='round_id', db_constraint=True, to_field='id', related_name='answers', on_delete=OnDelete.CASCADE)),
                ('question_id', fields.CharField(max_length=64)),
                ('score', fields.SmallIntField()),
                ('comment', fields.TextField(default='', unique=False)),
                ('team', fields.ForeignKeyField('models.Team', source_field='team_id', null=True, db_constraint=True, to_field='id', related_name='pulse_answers', on_delete=OnDelete.SET_NULL)),
                ('dimensions', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'pulse_answer', 'app': 'models', 'indexes': [Index(fields=['round_id', 'question_id'])], 'pk_attr': 'id', 'table_description': "One employee's answer to one question of a pulse round, stored so that it cannot lead back to the person."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Invitation',
            name='token_hash',
            field=fields.CharField(null=True, db_index=True, max_length=64),
        ),
        ops.RunPython(move_employee_answers, atomic=True),
    ]
