from django.core.management.base import BaseCommand, CommandError

from workspaces.models import Membership
from workspaces.services import api_token_issue


class Command(BaseCommand):
    help = "Print a new API bearer token for a member of a workspace. It is shown once; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="workspace slug")
        parser.add_argument("--user", required=True, help="member's email")
        parser.add_argument("--name", default="", help="a label to recognise the token by")

    def handle(self, *args, workspace, user, name, **options):
        membership = (
            Membership.objects.select_related("workspace", "user")
            .filter(workspace__slug=workspace, user__email=user.strip().lower())
            .first()
        )
        if membership is None:
            raise CommandError(f"{user} is not a member of workspace {workspace}.")
        _, raw = api_token_issue(membership=membership, name=name)
        self.stdout.write(raw)
