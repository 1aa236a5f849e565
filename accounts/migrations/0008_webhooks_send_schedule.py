"""Schedule the task that sends the webhook deliveries that are due: retries, and any
first attempt whose task was lost."""

from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="webhooks-send",
        defaults={
            "func": "accounts.tasks.webhooks_send_due",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="webhooks-send").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_webhooks"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
