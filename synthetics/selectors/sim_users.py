"""The sim-user list and the pool's counts (kept under the pool stamp, so a pool of a million is
counted once per change, not once per call)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from django.db import connection
from django.db.models import Count, Q, QuerySet

from synthetics.models import SimUser
from synthetics.selectors.prepared import Prepared
from synthetics.selectors.run_inputs import pool_stamp


@dataclass(frozen=True, slots=True)
class PoolCounts:
    active: int  # sim users a run may pick: not churned
    churned: int
    by_persona: dict[str, int]  # every sim user, churned or not


_POOL_COUNTS_BY_PERSONA = Prepared(
    lambda: (
        SimUser.objects.values("persona")
        .annotate(n=Count("id"), active=Count("id", filter=Q(churned_at__isnull=True)))
        .order_by("persona")
        .values_list("persona", "n", "active")
    )
)
# Per database: (stamp, counts). Any write to sim_users moves the stamp (migration 0018), so counts
# kept under a stamp are exact while it stands: a pool of a million is counted once per change,
# not once per call.
_POOL_COUNTS: dict[tuple[str, str], tuple[int, PoolCounts]] = {}


class _Unread(Enum):
    """`stamp` not given: pool_counts reads it itself (None already means "no stamp")."""

    STAMP = "unread"


def pool_counts(*, stamp: int | None | Literal[_Unread.STAMP] = _Unread.STAMP) -> PoolCounts:
    """The pool's counts: kept while the pool stamp has not moved, counted (one GROUP BY) when it
    has. `stamp`: the stamp as read before this call (default: read now); None: no stamp (SQLite
    without its triggers), always counted."""
    if stamp is _Unread.STAMP:
        stamp = pool_stamp()
    where = (connection.alias, connection.settings_dict["NAME"])
    kept = _POOL_COUNTS.get(where)
    if stamp is not None and kept is not None and kept[0] == stamp:
        return kept[1]
    rows = _POOL_COUNTS_BY_PERSONA.rows()  # after the stamp: a write in between moves it again
    counts = PoolCounts(
        active=sum(active for _, _, active in rows),
        churned=sum(n - active for _, n, active in rows),
        by_persona={persona: n for persona, n, _ in rows},
    )
    if stamp is not None:
        _POOL_COUNTS[where] = (stamp, counts)
    return counts


def sim_user_list(*, persona: str | None = None) -> QuerySet[SimUser]:
    """Sim users with their account and whether they are in an active journey (partial index)."""
    users = SimUser.objects.select_related("user").with_activity().order_by("id")
    if persona:
        users = users.filter(persona=persona)
    return users


def sim_user_persona_counts() -> dict[str, int]:
    """Sim users per persona, the whole pool (kept under the pool stamp: pool_counts)."""
    return dict(pool_counts().by_persona)
