"""What the cleanup job's page reads."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404

from synthetics.models import CleanupJob


def cleanup_job_get(job_id: int) -> CleanupJob:
    """The cleanup job, or Http404 (the API's JSON 404), also for an id no bigint can hold."""
    if not 1 <= job_id <= 2**63 - 1:
        raise Http404("No such cleanup job.")
    return get_object_or_404(CleanupJob, pk=job_id)
