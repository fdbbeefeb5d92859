"""Attach mode: the key of a sim user's account in the application's account table, and the origin of
rows written into an application table without a jsonb column for the tag."""

from django.db import migrations, models

# SQLite rebuilds sim_users to add a column and the rebuild drops its triggers: the pool stamp's
# (0018_pool_stamp) are made again after it, and before the rebuild that removes the column again.
SQLITE_STAMP_TRIGGERS = [
    f"""
    CREATE TRIGGER IF NOT EXISTS sim_users_pool_stamp_{action.lower()} AFTER {action} ON sim_users
    BEGIN UPDATE synthetic_pool_stamp SET version = random() WHERE id = 1; END
    """
    for action in ("INSERT", "UPDATE", "DELETE")
]


def stamp_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_STAMP_TRIGGERS:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("synthetics", "0027_setting_labels"),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, stamp_triggers),
        migrations.AddField(
            model_name="simuser",
            name="account_key",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Attach mode: the key of this sim user's account in the application's account table (empty in demo mode, where the account is `user`).",
                max_length=255,
            ),
        ),
        migrations.CreateModel(
            name="RowOrigin",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "table",
                    models.CharField(
                        help_text="The application table, schema.table.", max_length=127
                    ),
                ),
                ("row_key", models.TextField(help_text="The row's primary key, as text.")),
                ("run_id", models.BigIntegerField()),
                ("run_key", models.CharField(max_length=32)),
                (
                    "created_at",
                    models.DateTimeField(help_text="The row's time (its mapped time column)."),
                ),
            ],
            options={
                "db_table": "synthetic_row_origins",
                "ordering": ["table", "created_at"],
                "indexes": [
                    models.Index(fields=["table", "created_at"], name="row_origins_table_time"),
                    models.Index(fields=["run_id"], name="row_origins_run"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("table", "row_key"), name="row_origins_unique_row"
                    )
                ],
            },
        ),
        migrations.RunPython(stamp_triggers, migrations.RunPython.noop),
    ]
