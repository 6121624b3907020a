from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"

    def ready(self):
        from django.db.models.signals import post_delete, post_save, pre_delete

        from integrations.models import LeadWebhook
        from integrations.services import queued_submissions_capture, webhook_forget

        def forget(sender, instance, **kwargs):
            # Every save or delete (services, admin, cascades) drops the cached key lookup.
            webhook_forget(instance.key_hash)

        def capture_queued(sender, instance, origin=None, **kwargs):
            # Its queued submissions are captured with its settings (mapping, pipeline, dedup)
            # before it goes; afterwards nothing would say how to read them. Not when its whole
            # workspace is being deleted (the cascade would not know the new leads).
            deleting_webhooks = isinstance(origin, LeadWebhook) or getattr(origin, "model", None) is LeadWebhook
            if deleting_webhooks:
                queued_submissions_capture(workspace_id=instance.workspace_id, webhook_id=instance.pk)

        post_save.connect(forget, sender=LeadWebhook, dispatch_uid="lead-webhook-forget-saved")
        pre_delete.connect(capture_queued, sender=LeadWebhook, dispatch_uid="lead-webhook-capture-queued")
        post_delete.connect(forget, sender=LeadWebhook, dispatch_uid="lead-webhook-forget-deleted")
