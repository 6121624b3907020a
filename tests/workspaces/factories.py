import factory

from workspaces.models import Membership, Role, User
from workspaces.services import api_token_issue, workspace_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class WorkspaceFactory(factory.Factory):
    """Creates workspaces through the service, so each has its owner and default pipeline."""

    class Meta:
        model = dict

    slug = factory.Sequence(lambda n: f"ws-{n}")

    @classmethod
    def _create(cls, model_class, slug):
        return workspace_create(slug=slug, owner=UserFactory())


def member(workspace, role: str = Role.MARKETER, user: User | None = None) -> Membership:
    user = user or UserFactory()
    return Membership.objects.create(workspace=workspace, user=user, role=role)


def token_for(membership: Membership) -> str:
    _, raw = api_token_issue(membership=membership, name="test")
    return raw
