from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0014_loyalty_standing')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Suppression',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('digest', fields.CharField(unique=True, max_length=64)),
                ('kind', fields.CharField(max_length=16)),
                ('erasure', fields.CharField(max_length=32, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'suppression', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An erased person (pulse/privacy.py): only HMAC-SHA256 under the secret key of their normalised e-mail'},
            bases=['Model'],
        ),
    ]
