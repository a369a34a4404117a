from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

# Cases closed before this release are marked as decided, so the first run sends no follow-up question for
# a case resolved months ago.
DECIDED = (
    "UPDATE followup_case SET recovery_decided_at = updated_at"
    " WHERE status IN ('resolved', 'closed_no_action') AND recovery_decided_at IS NULL"
)


class Migration(migrations.Migration):
    dependencies = [('models', '0015_suppression')]

    initial = False

    operations = [
        ops.AddField(
            model_name='FollowUpCase',
            name='recovery_decided_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='FollowUpCase',
            name='recovery_invitation_id',
            field=fields.IntField(null=True),
        ),
        ops.AddIndex(
            model_name='FollowUpCase',
            index=Index(fields=['recovery_invitation_id']),
        ),
        ops.AddIndex(
            model_name='FollowUpCase',
            index=Index(fields=['created_at']),
        ),
        ops.RunSQL(DECIDED, reverse_sql=ops.RunSQL.noop),
    ]
