import itertools

from integrations.models import LeadWebhook
from integrations.services import webhook_create

_counter = itertools.count(1)


def make_webhook(workspace, name: str | None = None, **settings_data) -> tuple[LeadWebhook, str]:
    """Creates a webhook through the service, as the API and settings page do; returns (webhook, raw key)."""
    return webhook_create(workspace=workspace, name=name or f"Webhook {next(_counter)}", **settings_data)


def ingest_path(raw_key: str) -> str:
    return f"/webhooks/leads/{raw_key}"
