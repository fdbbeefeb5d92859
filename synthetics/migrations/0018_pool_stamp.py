"""The pool's stamp: a value the database changes with every write to sim_users, so a worker can
keep the pool it loaded between runs and load it again only when the stamp has moved
(services/runs.RunInputs.load).

Each write draws a new random 64-bit value (PostgreSQL: from two random() calls; SQLite: random()),
so a stamp names one state of the table: a rolled-back write restores the previous stamp with the
previous rows, and the value it drew never comes back (a collision is a 1 in 2^63 chance per
pair), also after a restore from a backup or this migration run backwards and forwards.
On PostgreSQL the trigger fires BEFORE each statement (INSERT, UPDATE, DELETE, TRUNCATE): two
writers of sim_users queue on the stamp row before touching any sim_users row. The stamp's lock is
held to the end of the writer's transaction, so writers of sim_users are serialised (a run that
churns or signs users up holds it through its own writes, under a second). A transaction that
locks journeys first and then writes sim_users (deleting a sim user in the admin) can still
deadlock with a run that wrote sim_users and then updates that user's journey: PostgreSQL aborts
one of them (a failed run is re-covered by the next). SQLite has row triggers only (its writers are
serialised anyway); its table rebuilds drop triggers, which `pool_stamp()` notices.
"""

from django.db import migrations

# 64 random bits from two draws (random() gives 52 at most).
POSTGRES_RANDOM = (
    "(floor(random() * 4294967296)::bigint << 32 | floor(random() * 4294967296)::bigint)"
)
POSTGRES_FORWARDS = [
    "CREATE TABLE synthetic_pool_stamp (id smallint PRIMARY KEY CHECK (id = 1), version bigint NOT NULL)",
    f"INSERT INTO synthetic_pool_stamp (id, version) VALUES (1, {POSTGRES_RANDOM})",
    """
    CREATE FUNCTION synthetic_pool_stamp_bump() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
        UPDATE synthetic_pool_stamp SET version = """
    + POSTGRES_RANDOM
    + """ WHERE id = 1;
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
