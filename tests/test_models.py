"""The data model: the seed's tables, defaults, constraints and the synthetic-tag index."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from synthetics.db import SyntheticTag
from synthetics.models import (
    Journey,
    JourneySceneEvent,
    JourneyTemplate,
    MindblockEvent,
    MindblockType,
    Scene,
    SimUser,
    SyntheticRun,
    SyntheticSettings,
    User,
)
from synthetics.selectors import run_inputs
from synthetics.services import run_manual
from tests import factories
from tests.helpers import shipped_catalogue, shipped_settings

pytestmark = pytest.mark.django_db


def test_settings_table_has_one_row_with_the_seed_defaults():
    # the seed's verification SQL, unchanged
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM synthetic_settings")
        columns = [c[0] for c in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    assert len(rows) == 1
    row = rows[0]
    assert bool(row["enabled"]) is True
    assert (row["sessions_per_min"], row["max_per_run"]) == (2, 5)
    assert (row["error_rate"], row["abandon_rate"]) == (0.05, 0.15)


def test_default_catalogue_is_loaded_as_data():
    assert JourneyTemplate.objects.count() == 5
    assert Scene.objects.count() == 19
    assert MindblockType.objects.count() == 7
    catalogue = run_inputs.catalogue_load()
    for template in catalogue.templates:
        assert [s.position for s in template.scenes] == list(range(1, len(template.scenes) + 1))


def test_the_engine_statistics_run_on_the_catalogue_the_migration_loads():
    # tests/helpers.shipped_catalogue() builds the engine's catalogue from the data migration's
    # constants, without a database: it is exactly what a run loads after migrating
    assert run_inputs.catalogue_load() == shipped_catalogue()
    assert run_inputs.generator_settings() == shipped_settings()


def test_the_seeds_sql_reads_what_the_generator_writes_by_the_contract_table_names(sim_users):
    # given the rows of a manual run
    run_manual(target=3)
    # when the seed's SQL counts each table of the contract by its name
    counts = {}
    with connection.cursor() as cursor:
        for table in (
            "synthetic_settings",
            "sim_users",
            "journeys",
            "journey_scene_events",
            "mindblock_events",
        ):
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    # then it finds the rows the generator wrote through the models
    assert counts == {
        "synthetic_settings": SyntheticSettings.objects.count(),
        "sim_users": SimUser.objects.count(),
        "journeys": Journey.objects.count(),
        "journey_scene_events": JourneySceneEvent.objects.count(),
        "mindblock_events": MindblockEvent.objects.count(),
    }
    assert (counts["synthetic_settings"], counts["sim_users"], counts["journeys"]) == (1, 40, 3)
    assert counts["journey_scene_events"] >= 3, "every session enters its first scene"


def test_a_second_settings_row_is_refused_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        SyntheticSettings.objects.create(id=2)


@pytest.mark.parametrize(
    "values",
    [
        {"error_rate": 1.2},
        {"abandon_rate": -0.01},
        {"abandon_rate": 0.9, "error_rate": 0.2},
        {"max_per_run": 100_001},
        {"sessions_per_min": 100_001},
    ],
)
def test_settings_rules_are_database_constraints(values):
    with pytest.raises(IntegrityError), transaction.atomic():
        SyntheticSettings.objects.filter(pk=1).update(**values)


def test_settings_rules_are_validated_with_a_message_per_field():
    row = SyntheticSettings.objects.get()
    row.error_rate, row.max_per_run = 2.0, 100_001
    with pytest.raises(ValidationError) as error:
        row.full_clean()
    assert "error_rate must be between 0 and 1 (got 2.0)." in error.value.message_dict["error_rate"]
    assert "max_per_run" in error.value.message_dict


def test_a_synthetic_account_must_be_inactive():
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="bad", is_synthetic=True, is_active=True)


def test_journey_end_must_follow_start():
    journey = factories.JourneyFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Journey.objects.filter(pk=journey.pk).update(
            ended_at=journey.started_at - timedelta(seconds=1)
        )


def test_an_active_journey_has_no_end():
    journey = factories.JourneyFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Journey.objects.filter(pk=journey.pk).update(status="active")


def test_factories_build_every_model():
    objects = [
        factories.UserFactory(),
        factories.StaffUserFactory(),
        factories.SimUserFactory(),
        factories.SettingsFactory(),
        factories.SceneFactory(),
        factories.MindblockTypeFactory(),
        factories.SyntheticRunFactory(),
        factories.JourneySceneEventFactory(),
        factories.MindblockEventFactory(),
    ]
    assert all(obj.pk for obj in objects)
    sim = objects[2]
    assert sim.user.is_synthetic and not sim.user.is_active
    assert not sim.user.has_usable_password()
    assert SyntheticRun.objects.get().duration_ms == 40
    assert str(objects[3]).startswith("Synthetics settings (enabled")


# --- the synthetic tag and its index ------------------------------------------------------------


def _fill_events(count: int, *, end: datetime, synthetic_every: int) -> None:
    """`count` events in the minutes before `end`, one in `synthetic_every` tagged synthetic."""
    user = factories.UserFactory()
    journey = factories.JourneyFactory(user=user)
    scene = factories.SceneFactory()
    run = factories.SyntheticRunFactory(window_start=end - timedelta(days=1), window_end=end)
    ours = {"synthetic": True, "run_id": run.id, "run_key": run.run_key}
    JourneySceneEvent.objects.bulk_create(
        JourneySceneEvent(
            user=user,
            journey=journey,
            scene=scene,
            event_type="scene_entered",
            created_at=end - timedelta(milliseconds=50 * i),
            event_payload=ours if i % synthetic_every == 0 else {"source": "app"},
        )
        for i in range(count)
    )


def test_seed_verification_sql_uses_the_tag_index_on_postgres(postgres_only):
    # given the last minutes full of real activity, a tenth of it synthetic
    _fill_events(5000, end=timezone.now(), synthetic_every=10)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE journey_scene_events")
        cursor.execute("SET LOCAL enable_seqscan = off")
        # the seed's query, unchanged
        cursor.execute(
            "EXPLAIN SELECT COUNT(*) FROM journey_scene_events "
            "WHERE created_at > NOW() - INTERVAL '5 minutes' "
            "AND event_payload->>'synthetic' = 'true'"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "scene_events_synthetic_idx" in plan, plan


def test_selector_counts_use_the_tag_index():
    end = datetime(2026, 1, 1, tzinfo=UTC)
    _fill_events(5000, end=end, synthetic_every=10)
    query = JourneySceneEvent.objects.synthetic().filter(created_at__gt=end - timedelta(minutes=5))
    assert query.count() == 500
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE journey_scene_events")
            cursor.execute("SET LOCAL enable_seqscan = off")
            plan = query.explain()
        else:
            # INDEXED BY makes SQLite fail ("no query solution") unless the index serves the query
            sql, params = query.query.sql_with_params()
            table = '"journey_scene_events"'
            sql = sql.replace(
                f"FROM {table}", f"FROM {table} INDEXED BY scene_events_synthetic_idx"
            )
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = "\n".join(str(row) for row in cursor.fetchall())
    assert "scene_events_synthetic_idx" in plan, plan


def test_only_rows_with_the_boolean_tag_and_a_run_of_our_ledger_are_ours():
    # given one row of ours and real rows that look like it in every way but one
    run = factories.SyntheticRunFactory(events_from=datetime(2026, 1, 9, 19, 1, tzinfo=UTC))
    failed = factories.SyntheticRunFactory(status="failed")
    key = run.run_key
    ours = factories.JourneySceneEventFactory(
        event_payload={"synthetic": True, "run_id": run.id, "run_key": key}
    )
    outside = [  # right in every way but the time: before the run's earliest event, after its end
        datetime(2026, 1, 9, 19, 0, 59, 999999, tzinfo=UTC),
        run.window_end + timedelta(microseconds=1),
    ]
    for created_at in outside:
        factories.JourneySceneEventFactory(
            created_at=created_at,
            event_payload={"synthetic": True, "run_id": run.id, "run_key": key},
        )
    lookalikes = [
        {"synthetic": True, "run_id": run.id},  # no key: written before the run existed
        {"synthetic": True, "run_id": run.id, "run_key": "k0123456789abcdef"},  # another key
        {"synthetic": True, "run_id": run.id, "run_key": key.upper()},
        {"synthetic": True, "run_id": run.id, "run_key": None},
        {"synthetic": True, "run_id": failed.id, "run_key": failed.run_key},
        {"synthetic": "true", "run_id": run.id},  # the string, as a real app may write
        {"synthetic": True},  # no run id
        {"synthetic": True, "run_id": str(run.id)},  # a string run id
        {"synthetic": True, "run_id": run.id + 1000},  # not in the ledger
        {"synthetic": True, "run_id": failed.id},  # a failed run writes nothing
        {"synthetic": True, "run_id": float(run.id) + 0.5},
        {"synthetic": True, "run_id": "1; DROP TABLE users"},
        {"synthetic": True, "run_id": 10**30},  # overflows bigint: never an error
        {"synthetic": True, "run_id": -run.id},
        {"synthetic": False, "run_id": run.id},
        {"synthetic": 1, "run_id": run.id},
        {"synthetic": "true"},
        {},
        {"x": True},
    ]
    for payload in lookalikes:
        factories.JourneySceneEventFactory(event_payload=payload)
    # when the selectors and the admin's two origins ask
    synthetic = list(JourneySceneEvent.objects.synthetic().values_list("pk", flat=True))
    real = set(JourneySceneEvent.objects.real().values_list("pk", flat=True))
    # then only our row is synthetic, and the rest is real: the two partition the table
    assert synthetic == [ours.pk]
    assert real == set(JourneySceneEvent.objects.exclude(pk=ours.pk).values_list("pk", flat=True))
    assert len(real) == len(lookalikes) + len(outside)
    # while the seed's own SQL (the text tag) still counts ours, with every boolean true and "true"
    text_tagged = [
        p for p in lookalikes if p.get("synthetic") is True or p.get("synthetic") == "true"
    ]
    seed_sql = JourneySceneEvent.objects.alias(tag=SyntheticTag("event_payload")).filter(tag="true")
    assert seed_sql.count() == 1 + len(text_tagged) + len(outside)
