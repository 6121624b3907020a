from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from leadsmgr import views as health
from leadsmgr.api.errors import error_response
from pipelines import views as board
from workspaces import views as workspace_views

urlpatterns = [
    path("", board.home, name="home"),
    path("leads/", board.board, name="board"),
    path("workspace/switch", workspace_views.switch_workspace, name="workspace-switch"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/", include("leadsmgr.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
]


def api_not_found(request, exception=None):
    if request.path.startswith(("/api/", "/webhooks/")):
        return error_response(404, "not_found", "Not found.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith(("/api/", "/webhooks/")):
        return error_response(500, "server_error", "Something went wrong on our side.")
    from django.views.defaults import server_error as default_server_error

    return default_server_error(request)


handler404 = api_not_found
handler500 = server_error
