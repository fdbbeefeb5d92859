"""API tokens: create or rotate the token a user sends as `Authorization: Bearer <token>`."""

from __future__ import annotations

from django.db import transaction
from rest_framework.authtoken.models import Token

from synthetics.errors import ApplicationError
from synthetics.models import User


@transaction.atomic
def api_token_issue(*, username: str, rotate: bool) -> tuple[str, bool]:
    """Return (key, created): the user's token, a new one when there is none or `rotate` is set."""
    if "\x00" in username:  # PostgreSQL refuses NUL in any text: no account can be named so
        raise ApplicationError(f"No user named {username!r}.")
    try:
        user = User.objects.get(username=username)
    except User.DoesNotExist:
        raise ApplicationError(f"No user named {username!r}.") from None
    if user.is_synthetic or not user.is_active:
        raise ApplicationError(f"{username!r} is inactive or synthetic and cannot use the API.")
    if rotate:
        Token.objects.filter(user=user).delete()
    token, created = Token.objects.get_or_create(user=user)
    return token.key, created
