"""Routes of the API under /api/synthetics/ (the seed's seven paths, insights, expectations and incidents)."""

from django.urls import path

from synthetics.api import views

app_name = "synthetics-api"

urlpatterns = [
    path("status", views.StatusView.as_view(), name="status"),
    path("toggle", views.ToggleView.as_view(), name="toggle"),
    path("settings", views.SettingsView.as_view(), name="settings"),
    path("run-now", views.RunNowView.as_view(), name="run-now"),
    path("activity/<str:hours>", views.ActivityView.as_view(), name="activity"),
    path("cleanup", views.CleanupView.as_view(), name="cleanup"),
    path("cleanup/<int:job_id>", views.CleanupJobView.as_view(), name="cleanup-job"),
    path("sim-users", views.SimUsersView.as_view(), name="sim-users"),
    path("insights", views.InsightsView.as_view(), name="insights"),
    path("expectations", views.ExpectationsView.as_view(), name="expectations"),
    path("incidents", views.IncidentsView.as_view(), name="incidents"),
    path("incidents/<int:incident_id>", views.IncidentView.as_view(), name="incident"),
]
