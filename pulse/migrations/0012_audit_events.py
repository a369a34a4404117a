from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0011_loyalty_latest')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor', fields.CharField(max_length=254)),
                ('action', fields.CharField(max_length=64)),
                ('target', fields.CharField(default='', max_length=254)),
                ('source', fields.CharField(default='', max_length=64)),
                ('details', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'audit_event', 'app': 'models', 'indexes': [Index(fields=['at']), Index(fields=['action', 'at']), Index(fields=['actor', 'at'])], 'pk_attr': 'id', 'table_description': 'Who did what to personal data or access, when and from where (pulse/audit.py). Appended, never edited,'},
            bases=['Model'],
        ),
    ]
