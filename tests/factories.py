"""factory-boy factories for every model."""

from datetime import UTC, date, datetime, timedelta

import factory
from django.contrib.auth.hashers import make_password

from synthetics import models


class UserFactory(factory.django.DjangoModelFactory):
    """A real (non-synthetic) account of the application."""

    class Meta:
        model = models.User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"real{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.LazyFunction(lambda: make_password("correct horse battery staple"))
    is_active = True
    is_synthetic = False


class SyntheticUserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"simf{n:06d}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@{models.SYNTHETIC_EMAIL_DOMAIN}")
    password = factory.LazyFunction(lambda: make_password(None))
    is_active = False
    is_synthetic = True


class StaffUserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    is_superuser = True


class SettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SyntheticSettings
        django_get_or_create = ("id",)

    id = 1


class SimUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SimUser

    user = factory.SubFactory(SyntheticUserFactory)
    persona = "regular"
    activity_weight = 1.0
    timezone = "Europe/Berlin"
    locale = "de_DE"
    display_name = factory.Faker("name")
    signup_date = date(2025, 6, 1)


class JourneyTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.JourneyTemplate

    slug = factory.Sequence(lambda n: f"template-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    popularity = 1.0


class SceneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Scene

    template = factory.SubFactory(JourneyTemplateFactory)
    position = factory.Sequence(lambda n: n + 1)
    slug = factory.Sequence(lambda n: f"scene-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    dwell_median_seconds = 60.0
    mindblock_rate = 0.4


class MindblockTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.MindblockType

    slug = factory.Sequence(lambda n: f"mindblock-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    weight = 1.0


class SyntheticRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SyntheticRun

    trigger = models.RunTrigger.SCHEDULED
    status = models.RunStatus.SUCCEEDED
    started_at = factory.LazyFunction(lambda: datetime(2026, 1, 9, 19, 15, tzinfo=UTC))
    finished_at = factory.LazyAttribute(lambda o: o.started_at + timedelta(milliseconds=40))
    window_end = factory.LazyAttribute(lambda o: o.started_at.replace(second=0, microsecond=0))
    window_start = factory.LazyAttribute(lambda o: o.window_end - timedelta(minutes=1))


class JourneyFactory(factory.django.DjangoModelFactory):
    """A real user's journey (not synthetic) unless told otherwise."""

    class Meta:
        model = models.Journey

    user = factory.SubFactory(UserFactory)
    template = factory.SubFactory(JourneyTemplateFactory)
    status = models.JourneyStatus.COMPLETED
    is_synthetic = False
    started_at = factory.LazyFunction(lambda: datetime(2026, 1, 9, 19, 0, tzinfo=UTC))
    ended_at = factory.LazyAttribute(lambda o: o.started_at + timedelta(minutes=4))


class JourneySceneEventFactory(factory.django.DjangoModelFactory):
    """A real user's scene event (no synthetic tag) unless told otherwise."""

    class Meta:
        model = models.JourneySceneEvent

    user = factory.SubFactory(UserFactory)
    journey = factory.SubFactory(JourneyFactory, user=factory.SelfAttribute("..user"))
    scene = factory.SubFactory(SceneFactory)
    event_type = "scene_entered"
    created_at = factory.LazyFunction(lambda: datetime(2026, 1, 9, 19, 1, tzinfo=UTC))
    event_payload = factory.LazyFunction(lambda: {"source": "app"})


class MindblockEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.MindblockEvent

    user = factory.SubFactory(UserFactory)
    journey = factory.SubFactory(JourneyFactory, user=factory.SelfAttribute("..user"))
    scene = factory.SubFactory(SceneFactory)
    mindblock = factory.SubFactory(MindblockTypeFactory)
    event_type = "mindblock_reported"
    created_at = factory.LazyFunction(lambda: datetime(2026, 1, 9, 19, 2, tzinfo=UTC))
    event_payload = factory.LazyFunction(lambda: {"source": "app", "intensity": 3})
