from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from workspaces.models import TOKEN_PREFIX, ApiToken, hash_token

# A token's last_used_at is written at most this often, so reads do not write on every request.
LAST_USED_RESOLUTION_SECONDS = 60


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer lmk_…`: the token names one membership, hence one workspace."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        raw = raw.strip()
        if not raw.startswith(TOKEN_PREFIX):
            raise AuthenticationFailed("Malformed bearer token.")
        token = (
            ApiToken.objects.active().select_related("membership__workspace", "membership__user").filter(key_hash=hash_token(raw)).first()
        )
        if token is None or not token.membership.user.is_active:
            raise AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        request._request.membership = token.membership
        request._request.workspace = token.membership.workspace
        return (token.membership.user, token)

    def authenticate_header(self, request):
        return self.keyword
