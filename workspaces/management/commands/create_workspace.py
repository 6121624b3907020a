from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from workspaces.services import user_get_or_create, workspace_create


class Command(BaseCommand):
    help = "Create a workspace with its default pipeline and the owner as Super Admin."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="lowercase letters, digits and hyphens, e.g. acme")
        parser.add_argument("--owner", required=True, help="the owner's email; the user is created when new")
        parser.add_argument("--name", help="display name (default: from the slug)")
        parser.add_argument("--region", default="US", help="default phone region, ISO 3166 alpha-2 (default US)")
        parser.add_argument("--password", help="password for a new owner (default: none; set one in admin or with changepassword)")

    def handle(self, *args, slug, owner, name, region, password, **options):
        try:
            # One transaction: a refused workspace leaves no orphan owner behind.
            with transaction.atomic():
                user, created = user_get_or_create(email=owner, password=password)
                workspace = workspace_create(slug=slug, name=name, owner=user, default_region=region.upper())
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Created workspace {workspace.slug} ({workspace.name}); owner {user.email}{' (new user)' if created else ''}."
            )
        )
