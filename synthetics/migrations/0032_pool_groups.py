"""The active pool in groups, kept by the database (PostgreSQL): one row per (persona, time zone,
locale, settles_into, signed up in a run or seeded) with its sim users counted and their activity
weights summed, so the reads that need the pool's shape (insights' rhythm and capacity,
expectations) read a few hundred rows instead of a million (selectors.run_inputs.pool_groups);
and every sim user, churned or not, counted by sign-up date (synthetic_pool_signups: insights'
weekly cohorts read 56 days of it instead of every sim user who signed up in them).

Statement triggers with transition tables apply each write's net change (INSERT, COPY, UPDATE,
DELETE; TRUNCATE empties them) in the writer's own transaction, so both always match the table
they count: a rolled-back write leaves them as they were. An UPDATE that moves nothing a group
counts (a display name, an account key) changes no row of it. The pool stamp's trigger already
serialises the writers of sim_users (0018), so two writers never update the same group row at once.
Sums of floats kept by adding and subtracting drift from a recount by a few units in the last place
(tests compare with a relative tolerance of 1e-9); a group whose last member leaves is deleted.

The tables are filled from a recount in the same transaction as the triggers are created, with
sim_users locked against writes until then: a write in between would be lost or counted twice.
SQLite (development and tests) has neither: the same counts come from GROUP BYs there.
"""

from django.db import migrations

KEY = "persona, timezone, locale, settles_into, joined"
POSTGRES_FORWARDS = [
    "LOCK TABLE sim_users IN SHARE MODE",
    """
    CREATE TABLE synthetic_pool_groups (
        persona varchar(32) NOT NULL,
        timezone varchar(64) NOT NULL,
        locale varchar(16) NOT NULL,
        settles_into varchar(32) NOT NULL,
        joined boolean NOT NULL,
        users bigint NOT NULL,
        activity double precision NOT NULL,
        PRIMARY KEY (persona, timezone, locale, settles_into, joined)
    )
    """,
    """
    CREATE TABLE synthetic_pool_signups (signup_date date PRIMARY KEY, users bigint NOT NULL)
    """,
    "INSERT INTO synthetic_pool_signups SELECT signup_date, count(*) FROM sim_users GROUP BY 1",
    f"""
    INSERT INTO synthetic_pool_groups ({KEY}, users, activity)
    SELECT persona, timezone, locale, settles_into, joined_at IS NOT NULL, count(*),
           sum(activity_weight)
    FROM sim_users WHERE churned_at IS NULL GROUP BY 1, 2, 3, 4, 5
    """,
    # Rows entering a group count +1 and their weight, rows leaving it -1 and minus their weight
    # (an UPDATE: the rows whose group, weight or churn changed, both sides), summed per group and
    # applied in the key's order; a group left with nobody is deleted.
    f"""
    CREATE FUNCTION synthetic_pool_groups_apply() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO synthetic_pool_groups AS g ({KEY}, users, activity)
            SELECT persona, timezone, locale, settles_into, joined_at IS NOT NULL, count(*),
                   sum(activity_weight)
            FROM new_rows WHERE churned_at IS NULL GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT ({KEY}) DO UPDATE
            SET users = g.users + excluded.users, activity = g.activity + excluded.activity;
            INSERT INTO synthetic_pool_signups AS s (signup_date, users)
            SELECT signup_date, count(*) FROM new_rows GROUP BY 1 ORDER BY 1
            ON CONFLICT (signup_date) DO UPDATE SET users = s.users + excluded.users;
            RETURN NULL;
        END IF;
        IF TG_OP = 'DELETE' THEN
            UPDATE synthetic_pool_groups AS g
            SET users = g.users - gone.users, activity = g.activity - gone.activity
            FROM (
                SELECT persona, timezone, locale, settles_into, joined_at IS NOT NULL AS joined,
                       count(*) AS users, sum(activity_weight) AS activity
                FROM old_rows WHERE churned_at IS NULL GROUP BY 1, 2, 3, 4, 5
            ) AS gone
            WHERE (g.persona, g.timezone, g.locale, g.settles_into, g.joined)
                = (gone.persona, gone.timezone, gone.locale, gone.settles_into, gone.joined);
            UPDATE synthetic_pool_signups AS s SET users = s.users - gone.users
            FROM (SELECT signup_date, count(*) AS users FROM old_rows GROUP BY 1) AS gone
            WHERE s.signup_date = gone.signup_date;
        ELSE
            -- one join of the statement's old and new rows: those whose group, weight, churn or
            -- sign-up date changed, each counted out of its old place and into its new one
            WITH moved AS MATERIALIZED (
                SELECT o.id IS NOT NULL AS o_row, o.churned_at IS NULL AS o_active,
                       o.persona AS o_persona, o.timezone AS o_timezone, o.locale AS o_locale,
                       o.settles_into AS o_settles, o.joined_at IS NOT NULL AS o_joined,
                       o.activity_weight AS o_weight, o.signup_date AS o_signup,
                       n.id IS NOT NULL AS n_row, n.churned_at IS NULL AS n_active,
                       n.persona AS n_persona, n.timezone AS n_timezone, n.locale AS n_locale,
                       n.settles_into AS n_settles, n.joined_at IS NOT NULL AS n_joined,
                       n.activity_weight AS n_weight, n.signup_date AS n_signup
                FROM old_rows o FULL JOIN new_rows n ON o.id = n.id
                WHERE (o.persona, o.timezone, o.locale, o.settles_into, o.joined_at IS NULL,
                       o.churned_at IS NULL, o.activity_weight, o.signup_date)
                    IS DISTINCT FROM (n.persona, n.timezone, n.locale, n.settles_into,
                       n.joined_at IS NULL, n.churned_at IS NULL, n.activity_weight, n.signup_date)
            ), grouped AS (
                INSERT INTO synthetic_pool_groups AS g ({KEY}, users, activity)
                SELECT persona, timezone, locale, settles_into, joined, sum(users), sum(activity)
                FROM (
                    SELECT o_persona, o_timezone, o_locale, o_settles, o_joined, -1, -o_weight
                    FROM moved WHERE o_row AND o_active
                    UNION ALL
                    SELECT n_persona, n_timezone, n_locale, n_settles, n_joined, 1, n_weight
                    FROM moved WHERE n_row AND n_active
                ) AS side (persona, timezone, locale, settles_into, joined, users, activity)
                GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
                ON CONFLICT ({KEY}) DO UPDATE
                SET users = g.users + excluded.users, activity = g.activity + excluded.activity
            )
            INSERT INTO synthetic_pool_signups AS s (signup_date, users)
            SELECT signup_date, sum(users) FROM (
                SELECT o_signup, -1 FROM moved WHERE o_row AND o_signup IS DISTINCT FROM n_signup
                UNION ALL
                SELECT n_signup, 1 FROM moved WHERE n_row AND o_signup IS DISTINCT FROM n_signup
            ) AS side (signup_date, users) GROUP BY 1 ORDER BY 1
            ON CONFLICT (signup_date) DO UPDATE SET users = s.users + excluded.users;
        END IF;
        DELETE FROM synthetic_pool_groups WHERE users = 0;
        DELETE FROM synthetic_pool_signups WHERE users = 0;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION synthetic_pool_groups_clear() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
        DELETE FROM synthetic_pool_groups;
        DELETE FROM synthetic_pool_signups;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER sim_users_pool_groups_insert AFTER INSERT ON sim_users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION synthetic_pool_groups_apply()
    """,
    """
    CREATE TRIGGER sim_users_pool_groups_update AFTER UPDATE ON sim_users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION synthetic_pool_groups_apply()
    """,
    """
    CREATE TRIGGER sim_users_pool_groups_delete AFTER DELETE ON sim_users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION synthetic_pool_groups_apply()
    """,
    """
    CREATE TRIGGER sim_users_pool_groups_truncate AFTER TRUNCATE ON sim_users
    FOR EACH STATEMENT EXECUTE FUNCTION synthetic_pool_groups_clear()
    """,
]
POSTGRES_BACKWARDS = [
    *(
        f"DROP TRIGGER sim_users_pool_groups_{action} ON sim_users"
        for action in ("insert", "update", "delete", "truncate")
    ),
    "DROP FUNCTION synthetic_pool_groups_apply()",
    "DROP FUNCTION synthetic_pool_groups_clear()",
    "DROP TABLE synthetic_pool_groups",
    "DROP TABLE synthetic_pool_signups",
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in POSTGRES_FORWARDS:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in POSTGRES_BACKWARDS:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("synthetics", "0031_sim_account_number_index"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
