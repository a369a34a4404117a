from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_sessions')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PulseRound',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('survey_id', fields.CharField(max_length=64)),
                ('number', fields.IntField()),
                ('questions', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('opens_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('remind_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('closes_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharField(default='open', max_length=16)),
                ('reminded', fields.BooleanField(default=False)),
                ('invited', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'pulse_round', 'app': 'models', 'unique_together': (('survey_id', 'number'),), 'pk_attr': 'id', 'table_description': 'One round of an employee pulse: which questions it asks, when it opens, reminds and closes.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Invitation',
            name='round',
            field=fields.ForeignKeyField('models.PulseRound', source_field='round_id', null=True, db_constraint=True, to_field='id', related_name='invitations', on_delete=OnDelete.CASCADE),
        ),
        ops.AddField(
            model_name='Response',
            name='round',
            field=fields.ForeignKeyField('models.PulseRound', source_field='round_id', null=True, db_constraint=True, to_field='id', related_name='responses', on_delete=OnDelete.CASCADE),
        ),
    ]
