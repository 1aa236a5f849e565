"""The Lease model now lives in accounts (``accounts.0014_lease``), on the same table:
jobs forgets it without dropping anything."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0015_job_resubmitted_after_crash"),
        ("accounts", "0014_lease"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Lease")],
            database_operations=[],
        ),
    ]
