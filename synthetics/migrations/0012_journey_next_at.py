"""Journeys in progress get the time their next step (or end) is due: a scheduled run reads only the
journeys due by its time instead of every one in progress (issue 11). The index on it comes in 0013,
built concurrently on PostgreSQL."""

from datetime import UTC, datetime, timedelta

from django.db import migrations, models

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fill_next_at(apps, schema_editor):
    """Every synthetic journey in progress: when its next step (or its end) is due, from its plan."""
    Journey = apps.get_model("synthetics", "Journey")
    batch = []
    for journey in (
        Journey.objects.filter(status="active", is_synthetic=True)
        .only("id", "plan", "next_step")
        .iterator(chunk_size=2000)
    ):
        steps = (journey.plan or {}).get("steps") if isinstance(journey.plan, dict) else None
        if steps is None:
            continue
        due_ms = (
            steps[journey.next_step]["at_ms"]
            if journey.next_step < len(steps)
            else journey.plan["end_ms"]
        )
        journey.next_at = EPOCH + timedelta(milliseconds=int(due_ms))
        batch.append(journey)
        if len(batch) >= 2000:
            Journey.objects.bulk_update(batch, ["next_at"])
            batch = []
    Journey.objects.bulk_update(batch, ["next_at"])


class Migration(migrations.Migration):
    dependencies = [
        ("synthetics", "0011_sim_user_timezone"),
    ]

    operations = [
        migrations.AddField(
            model_name="journey",
            name="next_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When an active synthetic journey next has a step (or its end) due: a "
                "run reads only the journeys due by its time.",
                null=True,
            ),
        ),
        migrations.RunPython(fill_next_at, migrations.RunPython.noop),
    ]
