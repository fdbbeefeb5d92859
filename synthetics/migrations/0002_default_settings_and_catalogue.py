"""Data: the single settings row with the seed's defaults, and the default journey catalogue."""

from django.db import migrations

DEFAULT_SETTINGS = {
    "enabled": True,
    "sessions_per_min": 2,
    "max_per_run": 5,
    "error_rate": 0.05,
    "abandon_rate": 0.15,
}

# (slug, name, popularity, [(scene slug, scene name, median dwell seconds, mindblock rate), ...])
JOURNEYS = [
    (
        "morning-checkin",
        "Morning check-in",
        3.0,
        [
            ("mood-checkin", "Mood check-in", 30, 0.25),
            ("intention-setting", "Set an intention", 60, 0.35),
            ("breathing", "Breathing exercise", 90, 0.20),
        ],
    ),
    (
        "focus-session",
        "Focus session",
        2.5,
        [
            ("warmup", "Warm-up", 40, 0.30),
            ("deep-work-prompt", "Deep-work prompt", 120, 0.60),
            ("reflection", "Reflection", 60, 0.40),
            ("next-steps", "Next steps", 45, 0.30),
        ],
    ),
    (
        "writers-unblock",
        "Writer's unblock",
        1.5,
        [
            ("pick-project", "Pick a project", 30, 0.30),
            ("freewrite", "Free-write", 150, 0.70),
            ("read-back", "Read it back", 60, 0.50),
            ("share-or-save", "Share or save", 30, 0.20),
        ],
    ),
    (
        "evening-reflection",
        "Evening reflection",
        2.0,
        [
            ("day-review", "Review the day", 60, 0.40),
            ("gratitude", "Gratitude", 45, 0.20),
            ("tomorrow-plan", "Plan tomorrow", 60, 0.35),
        ],
    ),
    (
        "first-steps",
        "First steps",
        1.0,
        [
            ("welcome", "Welcome", 30, 0.10),
            ("profile-setup", "Set up your profile", 60, 0.30),
            ("pick-goals", "Pick your goals", 45, 0.30),
            ("scene-tour", "Tour of a scene", 60, 0.40),
            ("notifications", "Notifications", 20, 0.10),
        ],
    ),
]

MINDBLOCKS = [
    ("procrastination", "Procrastination", 3.0),
    ("distraction", "Distraction", 2.5),
    ("self-doubt", "Self-doubt", 2.5),
    ("overwhelm", "Overwhelm", 2.0),
    ("perfectionism", "Perfectionism", 1.5),
    ("fatigue", "Fatigue", 1.5),
    ("fear-of-judgement", "Fear of judgement", 1.0),
]


def load_defaults(apps, schema_editor):
    SyntheticSettings = apps.get_model("synthetics", "SyntheticSettings")
    JourneyTemplate = apps.get_model("synthetics", "JourneyTemplate")
    Scene = apps.get_model("synthetics", "Scene")
    MindblockType = apps.get_model("synthetics", "MindblockType")
    SyntheticSettings.objects.update_or_create(pk=1, defaults=DEFAULT_SETTINGS)
    for slug, name, popularity, scenes in JOURNEYS:
        template, _ = JourneyTemplate.objects.update_or_create(
            slug=slug, defaults={"name": name, "popularity": popularity, "is_active": True}
        )
        for position, (scene_slug, scene_name, dwell, rate) in enumerate(scenes, start=1):
            Scene.objects.update_or_create(
                template=template,
                slug=scene_slug,
                defaults={
                    "position": position,
                    "name": scene_name,
                    "dwell_median_seconds": dwell,
                    "mindblock_rate": rate,
                },
            )
    for slug, name, weight in MINDBLOCKS:
        MindblockType.objects.update_or_create(
            slug=slug, defaults={"name": name, "weight": weight, "is_active": True}
        )


def unload_defaults(apps, schema_editor):
    apps.get_model("synthetics", "SyntheticSettings").objects.filter(pk=1).delete()
    apps.get_model("synthetics", "JourneyTemplate").objects.filter(
        slug__in=[slug for slug, *_ in JOURNEYS], journeys__isnull=True
    ).delete()
    apps.get_model("synthetics", "MindblockType").objects.filter(
        slug__in=[slug for slug, *_ in MINDBLOCKS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("synthetics", "0001_initial")]

    operations = [migrations.RunPython(load_defaults, unload_defaults)]
