from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_pulse_answers')]

    initial = False

    operations = [
        ops.AddField(
            model_name='WebhookDelivery',
            name='claimed_by',
            field=fields.CharField(null=True, max_length=64),
        ),
    ]
