"""The names from before migration 0007 are gone from the code (`synthetics.tasks.scheduled_tick`,
the schedule "synthetics-tick"): this folds a schedule still named so into the one schedule, and
drops any task still queued under the old path in django-q2's ORM broker (a task in Redis or
another broker fails once with "no module attribute scheduled_tick" and the next minute's task
runs). The every-minute schedule passes the minute it was due to its task (django-q2's
`intended_date_kwarg`): the run covers the minute the scheduler meant, however late a worker takes
it."""

import logging

from django.db import migrations

OLD_NAME, OLD_FUNC = "synthetics-tick", "synthetics.tasks.scheduled_tick"
NAME, FUNC = "synthetics-run", "synthetics.tasks.scheduled_run"
INTENDED_KWARG = "intended"

logger = logging.getLogger("synthetics")


def forward(apps, schema_editor):
    from django_q.signing import SignedPackage

    Schedule = apps.get_model("django_q", "Schedule")
    OrmQ = apps.get_model("django_q", "OrmQ")
    if Schedule.objects.filter(name=NAME).exists():
        Schedule.objects.filter(name=OLD_NAME).delete()
    Schedule.objects.filter(name=OLD_NAME).update(name=NAME)
    Schedule.objects.filter(func=OLD_FUNC).delete()
    Schedule.objects.filter(name=NAME, func=FUNC).update(intended_date_kwarg=INTENDED_KWARG)
    stale = []
    for pk, payload in OrmQ.objects.values_list("pk", "payload").iterator():
        try:
            task = SignedPackage.loads(payload)
        except Exception:  # signed with another key, or not ours: django-q2's to judge
            continue
        if isinstance(task, dict) and task.get("func") == OLD_FUNC:
            stale.append(pk)
    if stale:
        OrmQ.objects.filter(pk__in=stale).delete()
        logger.info("dropped %d task(s) queued under %s", len(stale), OLD_FUNC)


class Migration(migrations.Migration):
    dependencies = [
        ("synthetics", "0025_catalogue_bounds"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
