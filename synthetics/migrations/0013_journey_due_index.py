"""The partial index on journeys.next_at that a scheduled run reads through. On PostgreSQL it is built
with CREATE INDEX CONCURRENTLY, outside a transaction: a journeys table of millions of rows keeps
taking writes while it builds (a plain CREATE INDEX would block them). Elsewhere a plain index."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """AddIndexConcurrently on PostgreSQL; a plain AddIndex on other databases (SQLite)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("synthetics", "0012_journey_next_at"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="journey",
            index=models.Index(
                condition=models.Q(("is_synthetic", True), ("status", "active")),
                fields=["next_at"],
                name="journeys_due_idx",
            ),
        ),
    ]
