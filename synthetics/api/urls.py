"""Routes of the API under /api/synthetics/ (the seed's seven paths, insights, expectations, incidents and export)."""

from django.urls import path

from synthetics.api import (
    activity,
    cleanup,
    expectations,
    export,
    incidents,
    insights,
    runs,
    settings,
    sim_users,
    status,
)

app_name = "synthetics-api"

# (route, view, name). The seed's contract: its seven paths (and a cleanup job's progress).
SEED_ROUTES = (
    ("status", status.StatusView, "status"),
    ("toggle", settings.ToggleView, "toggle"),
    ("settings", settings.SettingsView, "settings"),
    ("run-now", runs.RunNowView, "run-now"),
    ("activity/<str:hours>", activity.ActivityView, "activity"),
    ("cleanup", cleanup.CleanupView, "cleanup"),
    ("cleanup/<int:job_id>", cleanup.CleanupJobView, "cleanup-job"),
    ("sim-users", sim_users.SimUsersView, "sim-users"),
)
# What Synthetics adds to it.
OWN_ROUTES = (
    ("activity", activity.ActivityRangeView, "activity-range"),
    ("insights", insights.InsightsView, "insights"),
    ("expectations", expectations.ExpectationsView, "expectations"),
    ("incidents", incidents.IncidentsView, "incidents"),
    ("incidents/<int:incident_id>", incidents.IncidentView, "incident"),
    ("export", export.ExportView, "export"),
)

urlpatterns = [
    path(route, view.as_view(), name=name) for route, view, name in (*SEED_ROUTES, *OWN_ROUTES)
]
