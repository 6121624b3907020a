from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from pipelines.services import pipeline_ensure_default
from workspaces.models import ApiToken, Membership, Role, User, Workspace, hash_token


def user_get_or_create(*, email: str, password: str | None = None, first_name: str = "", last_name: str = "") -> tuple[User, bool]:
    email = email.strip().lower()
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user, False
    user = User.objects.create_user(email=email, password=password, first_name=first_name, last_name=last_name)
    if password is None:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user, True


@transaction.atomic
def workspace_create(*, slug: str, name: str | None = None, owner: User, default_region: str = "US") -> Workspace:
    """Creates a workspace with its default pipeline and `owner` as Super Admin."""
    clean_slug = slugify(slug)
    if not clean_slug or clean_slug != slug:
        raise ValidationError({"slug": "Use lowercase letters, digits and hyphens."})
    if Workspace.objects.filter(slug=clean_slug).exists():
        raise ValidationError({"slug": f"A workspace named {clean_slug} exists already."})
    workspace = Workspace.objects.create(slug=clean_slug, name=name or clean_slug.replace("-", " ").title(), default_region=default_region)
    Membership.objects.create(workspace=workspace, user=owner, role=Role.SUPER_ADMIN)
    pipeline_ensure_default(workspace=workspace)
    return workspace


def membership_set(*, workspace: Workspace, user: User, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Choose one of: {', '.join(Role.values)}."})
    membership, _ = Membership.objects.update_or_create(workspace=workspace, user=user, defaults={"role": role})
    return membership


def api_token_issue(*, membership: Membership, name: str = "") -> tuple[ApiToken, str]:
    """Returns the token row and its raw value; the raw value is not stored and cannot be shown again."""
    raw = ApiToken.generate_raw()
    token = ApiToken.objects.create(membership=membership, name=name[:100], hint=raw[:12], key_hash=hash_token(raw))
    return token, raw


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
