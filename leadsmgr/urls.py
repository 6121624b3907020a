from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.defaults import page_not_found
from django.views.defaults import server_error as default_server_error
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from integrations import views as ingest_views
from integrations import web as webhook_views
from leads import views as lead_views
from leads import views_import as lead_import_views
from leads.segments import web as segment_views
from leads.tracking import views as tracking_views
from leads.tracking import web as tracking_web
from leadsmgr import views as health
from leadsmgr.api.errors import error_response
from pipelines import views as board_views
from workspaces import views as workspace_views

# The machine-facing endpoints first: Django tries the patterns in order, and a webhook or a
# tracking beacon should not be matched against every page of the UI first (~0.1 ms a request).
urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("livez", health.livez, name="livez"),
    path("webhooks/leads/<str:api_key>", ingest_views.ingest, name="webhook-ingest"),
    path("webhooks/leads/<str:api_key>/submissions/<str:submission_id>", ingest_views.submission, name="webhook-submission"),
    path("api/v1/track", tracking_views.track, name="track"),
    path("api/v1/track/config", tracking_views.track_config, name="track-config"),
    path("api/v1/personalization", tracking_views.personalization_for_visitor, name="personalization"),
    path("t.js", tracking_views.snippet, name="tracking-snippet"),
    path("t.gif", tracking_views.noscript_pixel, name="tracking-pixel"),
    path("e/o/<str:token>.gif", tracking_views.email_open, name="email-open"),
    path("e/c/<str:token>", tracking_views.email_click, name="email-click"),
    path("", board_views.home, name="home"),
    path("leads/", board_views.board, name="board"),
    path("leads/new", lead_views.lead_new, name="lead-new"),
    path("leads/bulk", lead_views.leads_bulk, name="leads-bulk"),
    path("leads/columns/<str:stage_id>", board_views.column_more, name="board-column-more"),
    path("leads/import", lead_import_views.lead_import, name="leads-import"),
    path("leads/import/run", lead_import_views.lead_import_run, name="leads-import-run"),
    path("leads/import/jobs/<str:job_id>", lead_import_views.lead_import_job, name="leads-import-job"),
    path("leads/export", lead_import_views.leads_export, name="leads-export"),
    path("leads/<str:lead_id>/", lead_views.lead_drawer, name="lead-drawer"),
    path("leads/<str:lead_id>/timeline", lead_views.lead_timeline_partial, name="lead-timeline"),
    path("leads/<str:lead_id>/move", lead_views.lead_move, name="lead-move"),
    path("leads/<str:lead_id>/edit", lead_views.lead_edit, name="lead-edit"),
    path("leads/<str:lead_id>/stage", lead_views.lead_stage, name="lead-stage"),
    path("leads/<str:lead_id>/notes", lead_views.lead_note, name="lead-note"),
    path("leads/<str:lead_id>/tags", lead_views.lead_tags, name="lead-tags"),
    path("leads/<str:lead_id>/assign", lead_views.lead_assign, name="lead-assign"),
    path("leads/<str:lead_id>/convert", lead_views.lead_convert, name="lead-convert"),
    path("leads/<str:lead_id>/delete", lead_views.lead_delete, name="lead-delete"),
    path("settings/webhooks/", webhook_views.webhook_list, name="webhooks"),
    path("settings/webhooks/<str:webhook_id>/", webhook_views.webhook_edit, name="webhook-edit"),
    path("settings/webhooks/<str:webhook_id>/regenerate", webhook_views.webhook_regenerate, name="webhook-regenerate"),
    path("settings/webhooks/<str:webhook_id>/delete", webhook_views.webhook_delete, name="webhook-delete"),
    path("segments/", segment_views.segment_list, name="segments"),
    path("segments/new", segment_views.segment_new, name="segment-new"),
    path("segments/preview", segment_views.segment_preview, name="segment-preview"),
    path("segments/<str:segment_id>/", segment_views.segment_detail, name="segment-detail"),
    path("segments/<str:segment_id>/delete", segment_views.segment_delete, name="segment-delete"),
    path("settings/tracking/", tracking_web.tracking_sites, name="tracking-sites"),
    path("settings/tracking/<str:site_id>/", tracking_web.tracking_site_edit, name="tracking-site-edit"),
    path("settings/tracking/<str:site_id>/delete", tracking_web.tracking_site_delete, name="tracking-site-delete"),
    path("leads/<str:lead_id>/merge", lead_views.lead_merge, name="lead-merge"),
    path("pipelines/new", board_views.pipeline_new, name="pipeline-new"),
    path("pipelines/<str:pipeline_id>/settings", board_views.pipeline_settings, name="pipeline-settings"),
    path("pipelines/<str:pipeline_id>/delete", board_views.pipeline_delete, name="pipeline-delete"),
    path("workspace/switch", workspace_views.switch_workspace, name="workspace-switch"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("leadsmgr.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
]

API_PREFIXES = ("/api/", "/webhooks/")


def not_found(request, exception=None):
    if request.path.startswith(API_PREFIXES):
        return error_response(404, "not_found", "Not found.")
    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith(API_PREFIXES):
        return error_response(500, "server_error", "Something went wrong on our side.")
    return default_server_error(request)


handler404 = not_found
handler500 = server_error
