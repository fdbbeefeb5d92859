"""Deleting old synthetic activity: tagged rows only, in small batches so the generator keeps running."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from synthetics.errors import whole_number_required
from synthetics.models import Journey, JourneySceneEvent, JourneyStatus, MindblockEvent

CLEANUP_BATCH = 5000
DEFAULT_OLDER_THAN_HOURS = 168  # a week
MAX_OLDER_THAN_HOURS = 24 * 365 * 10


@dataclass(frozen=True, slots=True)
class CleanupResult:
    cutoff: datetime
    dry_run: bool
    counts: dict[str, int]


def _delete_in_batches(queryset) -> int:
    """Delete the rows of `queryset` a batch at a time, each batch in its own short transaction."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:CLEANUP_BATCH])
            if not ids:
                return deleted
            _, per_model = queryset.model.objects.filter(pk__in=ids).delete()
            deleted += per_model.get(queryset.model._meta.label, 0)


def cleanup_synthetic(*, older_than_hours: int, dry_run: bool, now: datetime) -> CleanupResult:
    """Delete (or with dry_run only count) synthetic activity older than the cutoff.

    Events go by their synthetic tag and created_at (the tag index); journeys by is_synthetic and an
    end before the cutoff, so an active journey is never touched. Real rows are never selected. The
    run ledger keeps its record of what was generated.
    """
    whole_number_required("older_than_hours", older_than_hours, 1, MAX_OLDER_THAN_HOURS)
    cutoff = now - timedelta(hours=older_than_hours)
    scene_events = JourneySceneEvent.objects.synthetic().filter(created_at__lt=cutoff)
    mindblock_events = MindblockEvent.objects.synthetic().filter(created_at__lt=cutoff)
    journeys = _journeys_left_without_events(cutoff)
    if dry_run:
        counts = {
            "journey_scene_events": scene_events.count(),
            "mindblock_events": mindblock_events.count(),
            "journeys": journeys.count(),
        }
    else:
        # Events first: a finished journey's events all precede its end, hence the cutoff.
        counts = {
            "journey_scene_events": _delete_in_batches(scene_events),
            "mindblock_events": _delete_in_batches(mindblock_events),
            "journeys": _delete_in_batches(journeys),
        }
    return CleanupResult(cutoff=cutoff, dry_run=dry_run, counts=counts)


def _journeys_left_without_events(cutoff: datetime) -> QuerySet[Journey]:
    """Our finished journeys that end before the cutoff and keep no event once cleanup is done.

    An event is kept when it is not ours or not older than the cutoff. Asked before the events are
    deleted (a dry run) or after (the real run), the answer is the same, and a journey that still
    has any event is never deleted, so no cascade can reach a row we did not write.
    """
    kept: list[Exists] = []
    for model in (JourneySceneEvent, MindblockEvent):
        of_journey = model.objects.filter(journey=OuterRef("pk"))
        kept += [
            Exists(of_journey.real()),
            Exists(of_journey.synthetic().filter(created_at__gte=cutoff)),
        ]
    journeys = (
        Journey.objects.synthetic().filter(ended_at__lt=cutoff).exclude(status=JourneyStatus.ACTIVE)
    )
    for condition in kept:
        journeys = journeys.exclude(condition)
    return journeys
