"""The Lease model moves from jobs to accounts (the webhook sender uses it too, and accounts
never imports jobs). State only: the table keeps its name, ``jobs_lease``, and its rows."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0013_operatoraction"),
        ("jobs", "0015_job_resubmitted_after_crash"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Lease",
                    fields=[
                        (
                            "name",
                            models.CharField(max_length=50, primary_key=True, serialize=False),
                        ),
                        ("holder", models.CharField(blank=True, max_length=64)),
                        ("leased_until", models.DateTimeField(blank=True, null=True)),
                        ("state", models.JSONField(blank=True, default=dict)),
                    ],
                    options={"db_table": "jobs_lease"},
                ),
            ],
            database_operations=[],
        ),
    ]
