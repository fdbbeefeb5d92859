"""The admin, one module an idea: the settings row with its controls (settings), the journey catalogue
(catalogue), incidents, the rows the generator writes (generated), the accounts and sim users (users),
on the big-table tooling they share (big_tables). Importing them here registers them all for Django's
autodiscover."""

from django.contrib import admin

from synthetics.admin import catalogue, generated, incidents, settings, users  # noqa: F401

admin.site.site_header = "Synthetics"
admin.site.site_title = "Synthetics admin"
admin.site.index_title = "Synthetics"
admin.site.index_template = "admin/synthetics_index.html"
