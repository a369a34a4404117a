from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0009_case_note_events')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RateLimit',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subject', fields.CharField(max_length=64)),
                ('window_start', fields.BigIntField()),
                ('hits', fields.IntField(default=0)),
            ],
            options={'table': 'rate_limit', 'app': 'models', 'unique_together': (('subject', 'window_start'),), 'indexes': [Index(fields=['window_start'])], 'pk_attr': 'id', 'table_description': 'Events one client made in one fixed window of a rate limiter (see pulse/ratelimit.py), shared by every'},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='Response',
            index=Index(fields=['updated_at']),
        ),
    ]

