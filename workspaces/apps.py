from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "workspaces"

    def ready(self):
        from workspaces import schema  # noqa: F401 - registers the OpenAPI bearer scheme
