"""The names from before migration 0007 are gone from the code (`synthetics.tasks.scheduled_tick`,
the schedule "synthetics-tick"): this folds a schedule still named so into the one schedule, and
drops any task still queued under the old path, in django-q2's ORM broker and, where the cluster
uses one, its Redis queue (unreachable: said in a warning; such a task then fails once with "no
attribute scheduled_tick" and the next minute's task runs). The every-minute schedule passes the
minute it was due to its task (django-q2's `intended_date_kwarg`): the run covers the minute the
scheduler meant, however late a worker takes it."""

import logging

from django.db import migrations

OLD_NAME, OLD_FUNC = "synthetics-tick", "synthetics.tasks.scheduled_tick"
NAME, FUNC = "synthetics-run", "synthetics.tasks.scheduled_run"
INTENDED_KWARG = "intended"

logger = logging.getLogger("synthetics")


def _is_old_task(payload) -> bool:
    from django_q.signing import SignedPackage

    try:
        task = SignedPackage.loads(payload)
    except Exception:  # signed with another key, or not a task: django-q2's to judge
        return False
    return isinstance(task, dict) and task.get("func") == OLD_FUNC


def drop_from_redis(broker) -> int:
    """Remove the tasks queued under the old path from a django-q2 Redis broker's queue."""
    dropped = 0
    for payload in broker.connection.lrange(broker.list_key, 0, -1):
        if _is_old_task(payload.decode() if isinstance(payload, bytes) else payload):
            dropped += broker.connection.lrem(broker.list_key, 1, payload)
    return dropped


def _redis_broker():
    """The cluster's Redis broker, when it uses one (Q_CLUSTER["redis"])."""
    from django.conf import settings
    from django_q.brokers import get_broker

    if not settings.Q_CLUSTER.get("redis"):
        return None
    return get_broker()


def forward(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    OrmQ = apps.get_model("django_q", "OrmQ")
    # A schedule under the old names beside the one schedule goes; alone, it becomes the one.
    if Schedule.objects.filter(name=NAME).exists():
        Schedule.objects.filter(name=OLD_NAME).delete()
    Schedule.objects.filter(name=OLD_NAME).update(name=NAME)
    Schedule.objects.filter(name=NAME, func=OLD_FUNC).update(func=FUNC)
    Schedule.objects.filter(func=OLD_FUNC).delete()  # under another name: a copy of the one
    Schedule.objects.filter(name=NAME, func=FUNC).update(intended_date_kwarg=INTENDED_KWARG)
    stale = [
        pk
        for pk, payload in OrmQ.objects.values_list("pk", "payload").iterator()
        if _is_old_task(payload)
    ]
    if stale:
        OrmQ.objects.filter(pk__in=stale).delete()
        logger.info("dropped %d task(s) queued under %s", len(stale), OLD_FUNC)
    broker = _redis_broker()
    if broker is not None:
        try:
            dropped = drop_from_redis(broker)
        except Exception as error:  # Redis down: the migration still applies
            logger.warning("could not look into the Redis queue for old tasks: %s", error)
        else:
            if dropped:
                logger.info("dropped %d task(s) queued in Redis under %s", dropped, OLD_FUNC)


def backward(apps, schema_editor):
    """The code before this migration calls scheduled_run() with no argument: the schedule stops
    passing one (the dropped tasks and the old names stay gone)."""
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name=NAME, intended_date_kwarg=INTENDED_KWARG).update(
        intended_date_kwarg=None
    )


class Migration(migrations.Migration):
    dependencies = [
        ("synthetics", "0025_catalogue_bounds"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(forward, backward)]
