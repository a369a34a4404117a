from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_signin_throttle_link_cases')]

    initial = False

    operations = [
        ops.CreateModel(
            name='HealthProbe',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('checked_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'health_probe', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The one row /healthz rewrites to learn whether the database still accepts writes.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WorkerHeartbeat',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=128)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_loop_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_smtp_ok_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_smtp_error', fields.TextField(null=True, unique=False)),
                ('last_smtp_error_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('smtp_failing_since', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('sent', fields.BigIntField(default=0)),
                ('refused', fields.BigIntField(default=0)),
                ('connection_failures', fields.BigIntField(default=0)),
            ],
            options={'table': 'worker_heartbeat', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One row per worker process (host:pid), written after each loop of its outbox: when it last finished a loop'},
            bases=['Model'],
        ),
    ]
