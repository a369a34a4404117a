from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_webhook_claims')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SignInThrottle',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subject', fields.CharField(unique=True, max_length=80)),
                ('attempts', fields.IntField(default=0)),
                ('window_start', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('next_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'signin_throttle', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Sign-in attempts in the current window of one subject: a client address, an account, or an account from'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='FollowUpCase',
            name='from_link',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.DeleteModel(name='LoginFailure'),
    ]
