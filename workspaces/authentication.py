from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from workspaces.models import TOKEN_PREFIX, ApiToken, hash_token

# A token's last_used_at is written at most this often, so reads do not write on every request.
LAST_USED_RESOLUTION_SECONDS = 60


def membership_for_bearer(header: str):
    """The token's membership for an `Authorization: Bearer lmk_…` header; None when the header is
    not a bearer header; raises AuthenticationFailed for a malformed, unknown or revoked token."""
    scheme, _, raw = header.partition(" ")
    if not header or scheme.lower() != "bearer":
        return None, None
    raw = raw.strip()
    if not raw.startswith(TOKEN_PREFIX):
        raise AuthenticationFailed("Malformed bearer token.")
    token = ApiToken.objects.active().select_related("membership__workspace", "membership__user").filter(key_hash=hash_token(raw)).first()
    if token is None or not token.membership.user.is_active:
        raise AuthenticationFailed("Invalid or revoked token.")
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.membership, token


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer lmk_…`: the token names one membership, hence one workspace."""

    keyword = "Bearer"

    def authenticate(self, request):
        membership, token = membership_for_bearer(request.META.get("HTTP_AUTHORIZATION", ""))
        if membership is None:
            return None
        request._request.membership = token.membership
        request._request.workspace = token.membership.workspace
        return (token.membership.user, token)

    def authenticate_header(self, request):
        return self.keyword
