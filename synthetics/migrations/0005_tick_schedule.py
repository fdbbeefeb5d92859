"""Data: the django-q2 schedule that runs the generator every minute (one, by name)."""

from django.db import migrations
from django.utils import timezone

SCHEDULE_NAME = "synthetics-tick"
TICK_FUNC = "synthetics.tasks.scheduled_tick"
MINUTES = "I"  # django_q.models.Schedule.MINUTES


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(func=TICK_FUNC).exclude(name=SCHEDULE_NAME).delete()
    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": TICK_FUNC,
            "schedule_type": MINUTES,
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("synthetics", "0004_cache_table"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
