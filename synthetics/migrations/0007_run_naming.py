"""One name per concept: a run's sessions are `sessions_started`, the ledger keeps the rates a run
used, and the every-minute schedule is named after runs (`synthetics-run`, `synthetics.tasks.scheduled_run`)."""

from django.db import migrations, models

OLD_NAME, OLD_FUNC = "synthetics-tick", "synthetics.tasks.scheduled_tick"
NEW_NAME, NEW_FUNC = "synthetics-run", "synthetics.tasks.scheduled_run"


def rename_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    if Schedule.objects.filter(name=NEW_NAME).exists():
        Schedule.objects.filter(name=OLD_NAME).delete()
    Schedule.objects.filter(name=OLD_NAME).update(name=NEW_NAME)
    Schedule.objects.filter(func=OLD_FUNC).update(func=NEW_FUNC)


def restore_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name=NEW_NAME).update(name=OLD_NAME)
    Schedule.objects.filter(func=NEW_FUNC).update(func=OLD_FUNC)


class Migration(migrations.Migration):
    dependencies = [("synthetics", "0006_throttle_bucket")]

    operations = [
        migrations.RenameField("syntheticrun", "sessions_created", "sessions_started"),
        migrations.AlterField(
            model_name="syntheticrun",
            name="sessions_started",
            field=models.PositiveIntegerField(
                default=0,
                help_text="Sessions (journeys) the run started; the API also calls it sessions_created.",
            ),
        ),
        migrations.AddField(
            model_name="syntheticrun",
            name="abandon_rate",
            field=models.FloatField(blank=True, help_text="The setting the run used.", null=True),
        ),
        migrations.AddField(
            model_name="syntheticrun",
            name="error_rate",
            field=models.FloatField(blank=True, help_text="The setting the run used.", null=True),
        ),
        migrations.RunPython(rename_schedule, restore_schedule),
    ]
