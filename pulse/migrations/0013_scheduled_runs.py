from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0012_audit_events')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ScheduledRun',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=64)),
                ('last_started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'scheduled_run', 'app': 'models', 'pk_attr': 'id', 'table_description': 'When a once-a-day job last started (retention): of several workers, only the one whose guarded UPDATE'},
            bases=['Model'],
        ),
    ]
