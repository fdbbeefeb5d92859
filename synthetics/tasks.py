"""django-q2 entry points: module-level functions with stable dotted paths and literal arguments."""

from __future__ import annotations

import logging

from synthetics.models import RunTrigger
from synthetics.services import RunFailed, tick_run

logger = logging.getLogger("synthetics")

SCHEDULE_NAME = "synthetics-tick"
TICK_FUNC = "synthetics.tasks.scheduled_tick"


def scheduled_tick() -> dict:
    """The every-minute run. A failure is already rolled back and in the ledger; the next minute proceeds."""
    try:
        result = tick_run(trigger=RunTrigger.SCHEDULED)
    except RunFailed as error:
        return {"run_id": error.run_id, "status": "failed", "error": str(error)}
    return {
        "run_id": result.run_id,
        "status": result.status,
        "sessions_created": result.sessions_created,
        "scene_events_created": result.scene_events_created,
        "mindblock_events_created": result.mindblock_events_created,
        "note": result.note,
    }
