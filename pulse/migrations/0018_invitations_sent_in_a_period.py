from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0017_outbox_by_invitation')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Invitation',
            index=Index(fields=['sent_at', 'touchpoint_id', 'status', 'contact_id']),
        ),
    ]
