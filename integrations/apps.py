from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from integrations.models import LeadWebhook
        from integrations.services import webhook_forget

        def forget(sender, instance, **kwargs):
            # Every save or delete (services, admin, cascades) drops the cached key lookup.
            webhook_forget(instance.key_hash)

        post_save.connect(forget, sender=LeadWebhook, dispatch_uid="lead-webhook-forget-saved")
        post_delete.connect(forget, sender=LeadWebhook, dispatch_uid="lead-webhook-forget-deleted")
