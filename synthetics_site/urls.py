"""URL routes: the admin, the Studio page, the REST API with its OpenAPI schema and docs, /metrics,
and /favicon.ico (a redirect to the static SVG icon, which browsers ask for on every page)."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from synthetics.access import synthetics_viewer_required
from synthetics.views import metrics, studio

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("studio/", studio, name="studio"),
    path("metrics", metrics, name="metrics"),
    path("favicon.ico", RedirectView.as_view(url=static("synthetics/favicon.svg"), permanent=True)),
    path("api/synthetics/", include("synthetics.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        # The split view serves its start-up script as a file: no inline script for the CSP.
        synthetics_viewer_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
]

handler400 = "synthetics.api.errors.bad_request"
handler404 = "synthetics.api.errors.not_found"
handler500 = "synthetics.api.errors.server_error"
