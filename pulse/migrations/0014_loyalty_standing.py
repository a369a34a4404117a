from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


async def backfill(apps, schema_editor):
    """Fill the table from loyalty_latest (survey kinds from the stored survey versions), as
    `pulse rollups rebuild` does."""
    from pulse import loyalty

    await loyalty.rebuild_standings()


async def nothing(apps, schema_editor):
    """Going back drops the table, with its rows."""


class Migration(migrations.Migration):
    dependencies = [('models', '0013_scheduled_runs')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LoyaltyStanding',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('scope_id', fields.IntField()),
                ('contact', fields.ForeignKeyField('models.Contact', source_field='contact_id', db_constraint=True, to_field='id', related_name='loyalty_standings', on_delete=OnDelete.CASCADE)),
                ('csat', fields.SmallIntField(null=True)),
                ('csat_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('csat_response_id', fields.BigIntField(null=True)),
                ('csat_team_id', fields.IntField(null=True)),
                ('nps', fields.SmallIntField(null=True)),
                ('nps_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('nps_response_id', fields.BigIntField(null=True)),
                ('nps_team_id', fields.IntField(null=True)),
                ('quadrant', fields.CharField(null=True, max_length=24)),
                ('last_answer_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'loyalty_standing', 'app': 'models', 'unique_together': (('scope_id', 'contact'),), 'indexes': [Index(fields=['scope_id', 'quadrant', 'last_answer_at', 'contact_id'])], 'pk_attr': 'id', 'table_description': 'Where a contact stands on loyalty for one scope: their latest CSAT and NPS given to the whole organisation'},
            bases=['Model'],
        ),
        ops.RunPython(backfill, nothing, atomic=True),
    ]
