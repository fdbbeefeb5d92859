"""Token authentication that accepts the seed's `Authorization: Bearer <token>` header."""

from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """`Authorization: Bearer <token>`; DRF's own `Token <token>` is accepted by TokenAuthentication."""

    keyword = "Bearer"
