"""Record the Segmind submissions a crash cut off, and look for a dead dispatcher twice a
minute (the sweeper's schedule and this one, half a minute apart)."""

from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    sweep = Schedule.objects.filter(name="jobs-sweep").first()
    # Half a minute after the sweeper's runs: django-q2 repeats a schedule at most once a
    # minute, and its sentinel looks for due schedules every 30 s.
    first = (sweep.next_run if sweep and sweep.next_run else timezone.now()) + timedelta(
        seconds=30
    )
    Schedule.objects.update_or_create(
        name="segmind-watch",
        defaults={
            "func": "jobs.tasks.segmind_watch",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
            "next_run": first,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="segmind-watch").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0014_segmind_key_budget"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="crash_resubmits",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="job",
            name="resubmitted_after_crash_at",
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
        migrations.RunPython(create_schedule, delete_schedule),
    ]
