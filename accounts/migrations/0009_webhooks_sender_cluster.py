"""The `webhooks-send` schedule runs the webhook sender in the webhooks cluster, not on
the workers that run jobs."""

from django.db import migrations


def to_webhooks_cluster(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="webhooks-send").update(
        cluster="webhooks"
    )


def to_default_cluster(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="webhooks-send").update(
        cluster=None
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_webhooks_send_schedule"),
    ]

    operations = [migrations.RunPython(to_webhooks_cluster, to_default_cluster)]
