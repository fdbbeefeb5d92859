"""The pool's stamp: a value the database changes with every write to sim_users, so a worker can
keep the pool it loaded between runs and load it again only when the stamp has moved
(services/runs.RunInputs.load).

A value is never given twice, even after a rollback, so a stamp names one state of the table:
PostgreSQL takes it from a sequence (nextval is not rolled back), SQLite from random() (64 bits).
On PostgreSQL the trigger fires BEFORE each statement (INSERT, UPDATE, DELETE, TRUNCATE): a writer
takes the stamp row's lock before any sim_users row lock, so two writers queue instead of
deadlocking over the stamp. SQLite has row triggers only (its writers are serialised anyway).
"""

from django.db import migrations

POSTGRES_FORWARDS = [
    "CREATE SEQUENCE synthetic_pool_stamp_seq",
    "CREATE TABLE synthetic_pool_stamp (id smallint PRIMARY KEY CHECK (id = 1), version bigint NOT NULL)",
    "INSERT INTO synthetic_pool_stamp (id, version) VALUES (1, nextval('synthetic_pool_stamp_seq'))",
    """
    CREATE FUNCTION synthetic_pool_stamp_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE synthetic_pool_stamp SET version = nextval('synthetic_pool_stamp_seq') WHERE id = 1;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER sim_users_pool_stamp BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON sim_users
    FOR EACH STATEMENT EXECUTE FUNCTION synthetic_pool_stamp_bump()
    """,
]
POSTGRES_BACKWARDS = [
    "DROP TRIGGER sim_users_pool_stamp ON sim_users",
    "DROP FUNCTION synthetic_pool_stamp_bump()",
    "DROP TABLE synthetic_pool_stamp",
    "DROP SEQUENCE synthetic_pool_stamp_seq",
]
SQLITE_FORWARDS = [
    "CREATE TABLE synthetic_pool_stamp (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)",
    "INSERT INTO synthetic_pool_stamp (id, version) VALUES (1, random())",
    *(
        f"""
        CREATE TRIGGER sim_users_pool_stamp_{action.lower()} AFTER {action} ON sim_users
        BEGIN UPDATE synthetic_pool_stamp SET version = random() WHERE id = 1; END
        """
        for action in ("INSERT", "UPDATE", "DELETE")
    ),
]
SQLITE_BACKWARDS = [
    *(f"DROP TRIGGER sim_users_pool_stamp_{action}" for action in ("insert", "update", "delete")),
    "DROP TABLE synthetic_pool_stamp",
]


def forwards(apps, schema_editor):
    statements = {"postgresql": POSTGRES_FORWARDS, "sqlite": SQLITE_FORWARDS}
    for statement in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


def backwards(apps, schema_editor):
    statements = {"postgresql": POSTGRES_BACKWARDS, "sqlite": SQLITE_BACKWARDS}
    for statement in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("synthetics", "0017_cleanup_one_running_job"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
