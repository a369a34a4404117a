from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

# Each contact's latest confirmed answer per survey and team, as pulse/loyalty.py keeps it (the same on both engines).
BACKFILL = (
    "INSERT INTO loyalty_latest (contact_id, survey_id, team_id, score, answered_at, day, response_id, updated_at)"
    " SELECT contact_id, survey_id, team_id, score, answered_at, day, id, updated_at FROM ("
    "SELECT i.contact_id, r.survey_id, COALESCE(r.team_id, 0) AS team_id, r.score, r.answered_at, r.day, r.id,"
    " r.updated_at, ROW_NUMBER() OVER (PARTITION BY i.contact_id, r.survey_id, COALESCE(r.team_id, 0)"
    " ORDER BY r.answered_at DESC, r.id DESC) AS newest"
    " FROM response r JOIN invitation i ON i.id = r.invitation_id"
    " WHERE r.confirmed AND NOT r.discarded AND i.contact_id IS NOT NULL AND r.answered_at IS NOT NULL) t"
    " WHERE newest = 1"
)


async def backfill(apps, schema_editor):
    """Fill the table from the answers already counted, in one statement."""
    await schema_editor.client.execute_query(BACKFILL)


async def nothing(apps, schema_editor):
    """Going back drops the table, with its rows."""

class Migration(migrations.Migration):
    dependencies = [('models', '0010_shared_rate_limit')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LoyaltyLatest',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('contact', fields.ForeignKeyField('models.Contact', source_field='contact_id', db_constraint=True, to_field='id', related_name='latest_answers', on_delete=OnDelete.CASCADE)),
                ('survey_id', fields.CharField(max_length=64)),
                ('team_id', fields.IntField(default=0, db_default=0)),
                ('score', fields.SmallIntField()),
                ('answered_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('day', fields.DateField()),
                ('response_id', fields.BigIntField()),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'loyalty_latest', 'app': 'models', 'unique_together': (('contact', 'survey_id', 'team_id'),), 'indexes': [Index(fields=['team_id', 'survey_id'])], 'pk_attr': 'id', 'table_description': "Each contact's latest counted answer to each survey, per team it was given to, kept in step with the"},
            bases=['Model'],
        ),
        ops.RunPython(backfill, nothing, atomic=True),
    ]
