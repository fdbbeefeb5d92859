"""An index for the next free sim account number (services.seeding.next_sim_index: the longest
simNNNNNN name first, then text order): a run that signs someone up reads it, and over a million
accounts the query read every sim account (about a second and more) where this index reads one
entry. The predicate is the query's own, so PostgreSQL uses it. PostgreSQL only, built concurrently
(the accounts table keeps taking writes); SQLite reads its few accounts as before."""

from django.db import migrations

INDEX = "users_sim_number_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("synthetics", "User")._meta.db_table)
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON {table} "
        "(length(username) DESC, username DESC) WHERE username::text ~ '^sim[0-9]{6,7}$'"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("synthetics", "0030_behaviour_model"),
    ]

    operations = [migrations.RunPython(create, drop)]
