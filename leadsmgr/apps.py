from django.apps import AppConfig


class LeadsmgrConfig(AppConfig):
    """The project package as an app, for project-wide hooks; it has no models."""

    name = "leadsmgr"

    def ready(self):
        from leadsmgr.db import connect_signals

        connect_signals()
