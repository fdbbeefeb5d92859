"""The database cache table that API throttling shares across web worker processes."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


def drop_cache_table(apps, schema_editor):
    schema_editor.execute("DROP TABLE IF EXISTS synthetics_cache")


class Migration(migrations.Migration):
    dependencies = [("synthetics", "0003_runs_status_window_index")]

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
