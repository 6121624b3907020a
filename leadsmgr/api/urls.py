from django.urls import path

from integrations.api import views as webhooks
from leads.api import import_export
from leads.api import views as leads
from leads.segments import api as segments
from leads.tracking import api as tracking
from pipelines.api import views as pipelines
from scoring import api as scoring

urlpatterns = [
    path("leads", leads.LeadListCreateApi.as_view(), name="api-leads"),
    path("leads/bulk-action", leads.LeadBulkActionApi.as_view(), name="api-leads-bulk"),
    path("leads/import", import_export.LeadImportApi.as_view(), name="api-leads-import"),
    path("leads/export", import_export.LeadExportApi.as_view(), name="api-leads-export"),
    path("leads/imports/<str:job_id>", import_export.LeadImportJobApi.as_view(), name="api-leads-import-job"),
    path("leads/<str:lead_id>", leads.LeadDetailApi.as_view(), name="api-lead"),
    path("leads/<str:lead_id>/stage", leads.LeadStageApi.as_view(), name="api-lead-stage"),
    path("leads/<str:lead_id>/assign", leads.LeadAssignApi.as_view(), name="api-lead-assign"),
    path("leads/<str:lead_id>/convert", leads.LeadConvertApi.as_view(), name="api-lead-convert"),
    path("leads/<str:lead_id>/notes", leads.LeadNotesApi.as_view(), name="api-lead-notes"),
    path("leads/<str:lead_id>/merge", leads.LeadMergeApi.as_view(), name="api-lead-merge"),
    path("segments", segments.SegmentListCreateApi.as_view(), name="api-segments"),
    path("segments/preview", segments.SegmentPreviewApi.as_view(), name="api-segments-preview"),
    path("segments/fields", segments.SegmentFieldsApi.as_view(), name="api-segments-fields"),
    path("segments/<str:segment_id>", segments.SegmentDetailApi.as_view(), name="api-segment"),
    path("segments/<str:segment_id>/members", segments.SegmentMembersApi.as_view(), name="api-segment-members"),
    path("segments/<str:segment_id>/automation", segments.SegmentAutomationApi.as_view(), name="api-segment-automation"),
    path("segments/<str:segment_id>/refresh", segments.SegmentRefreshApi.as_view(), name="api-segment-refresh"),
    path("leads/<str:lead_id>/score", scoring.LeadScoreApi.as_view(), name="api-lead-score"),
    path("leads/<str:lead_id>/score-history", scoring.LeadScoreHistoryApi.as_view(), name="api-lead-score-history"),
    path("scoring-model", scoring.ScoringModelApi.as_view(), name="api-scoring-model"),
    path("scoring-model/versions", scoring.ScoringModelVersionsApi.as_view(), name="api-scoring-model-versions"),
    path("scoring-model/presets", scoring.ScoringPresetsApi.as_view(), name="api-scoring-presets"),
    path("scoring-model/rescore", scoring.ScoringRescoreApi.as_view(), name="api-scoring-rescore"),
    path("leads/<str:lead_id>/profile", tracking.LeadProfileApi.as_view(), name="api-lead-profile"),
    path("leads/<str:lead_id>/timeline", tracking.LeadTimelineApi.as_view(), name="api-lead-timeline"),
    path("companies/<str:company_id>/profile", tracking.CompanyProfileApi.as_view(), name="api-company-profile"),
    path("tracking-sites", tracking.TrackingSiteListCreateApi.as_view(), name="api-tracking-sites"),
    path("tracking-sites/<str:site_id>", tracking.TrackingSiteDetailApi.as_view(), name="api-tracking-site"),
    path(
        "tracking-sites/<str:site_id>/regenerate-key", tracking.TrackingSiteRegenerateKeyApi.as_view(), name="api-tracking-site-regenerate"
    ),
    path("personalization-rules", tracking.RuleListCreateApi.as_view(), name="api-personalization-rules"),
    path("personalization-rules/<str:rule_id>", tracking.RuleDetailApi.as_view(), name="api-personalization-rule"),
    path("lead-webhooks", webhooks.WebhookListCreateApi.as_view(), name="api-webhooks"),
    path("lead-webhooks/<str:webhook_id>", webhooks.WebhookDetailApi.as_view(), name="api-webhook"),
    path("lead-webhooks/<str:webhook_id>/regenerate-key", webhooks.WebhookRegenerateKeyApi.as_view(), name="api-webhook-regenerate"),
    path("outbound-webhooks", webhooks.OutboundWebhookListCreateApi.as_view(), name="api-outbound-webhooks"),
    path("outbound-webhooks/<str:webhook_id>", webhooks.OutboundWebhookDetailApi.as_view(), name="api-outbound-webhook"),
    path(
        "outbound-webhooks/<str:webhook_id>/deliveries",
        webhooks.OutboundWebhookDeliveriesApi.as_view(),
        name="api-outbound-webhook-deliveries",
    ),
    path("outbound-webhooks/<str:webhook_id>/test", webhooks.OutboundWebhookTestApi.as_view(), name="api-outbound-webhook-test"),
    path("lead-pipelines", pipelines.PipelineListCreateApi.as_view(), name="api-pipelines"),
    path("lead-pipelines/ensure-default", pipelines.PipelineEnsureDefaultApi.as_view(), name="api-pipelines-ensure-default"),
    path("lead-pipelines/<str:pipeline_id>", pipelines.PipelineDetailApi.as_view(), name="api-pipeline"),
]
