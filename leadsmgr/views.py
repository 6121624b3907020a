from django.db import connection
from django.http import HttpResponse, JsonResponse

from leadsmgr.celery import app as celery_app


def healthz(request):
    """Liveness for load balancers and operators: the database and the Celery broker answer."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure is reported, not raised
        checks["database"] = f"error: {error.__class__.__name__}"
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as error:  # noqa: BLE001
        checks["broker"] = f"error: {error.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503)


def livez(request):
    """Liveness only: the process answers. Also the benchmark's trivial-view baseline."""
    return HttpResponse("ok", content_type="text/plain")
