"""Public tracking endpoints: the snippet, the Track API, its configuration, personalization, the
no-script pixel and the email open pixel / click redirect.

A browser call carries the site's public key (`?k=`); it is answered with CORS headers for the
site's configured origins only. A server may call the Track API with a bearer token instead.
"""

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from django.conf import settings
from django.core import signing
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from rest_framework.exceptions import AuthenticationFailed

from leads.tracking import ingest, personalization
from leads.tracking.email import EMAIL_TOKEN_SALT
from leads.tracking.ingest import BatchError, batch_ingest
from leads.tracking.models import EventKind, TrackEvent, TrackingSite
from leads.tracking.processing import lead_identify_token
from leads.tracking.services import site_for_key
from leads.tracking.tasks import enqueue_track_processing
from leadsmgr.api.errors import error_response
from leadsmgr.api.parsers import parse_json
from leadsmgr.ratelimit import client_ip, over_limit, over_limits
from workspaces.authentication import membership_for_bearer
from workspaces.permissions import LEADS_MANAGE

SNIPPET_PATH = Path(__file__).resolve().parent / "t.js"
# A 1x1 transparent GIF.
PIXEL = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


def _origin_allowed(site: TrackingSite, origin: str) -> bool:
    return origin.rstrip("/") in {str(allowed).rstrip("/") for allowed in site.allowed_origins}


def _with_cors(response, origin: str):
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    return response


def _preflight(site: TrackingSite | None, origin: str):
    if site is None:
        return error_response(404, "not_found", "Unknown site key.")
    if not origin or not _origin_allowed(site, origin):
        return error_response(403, "origin_not_allowed", "This origin is not one of the site's allowed origins.", {"Origin": origin})
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type"
    response["Access-Control-Max-Age"] = "86400"
    return _with_cors(response, origin)


def _site_request(request):
    """(site, origin, error response) for a browser call with a site key."""
    origin = request.headers.get("Origin", "")
    site = site_for_key(request.GET.get("k", ""))
    if site is None:
        return None, origin, error_response(404, "not_found", "Unknown site key.", {"k": "Unknown or inactive site key."})
    # A request with an Origin is a browser's: only the site's own origins may use its key.
    if origin and not _origin_allowed(site, origin):
        return (
            site,
            origin,
            error_response(403, "origin_not_allowed", "This origin is not one of the site's allowed origins.", {"Origin": origin}),
        )
    retry_after = over_limits(
        (f"track-site:{site.pk}", site.rate_limit_per_minute),
        (f"track-ip:{client_ip(request)}", settings.TRACK_RATE_LIMIT_PER_IP),
    )
    if retry_after:
        response = error_response(
            429, "rate_limited", f"Too many requests; retry in {retry_after} s.", headers={"Retry-After": str(retry_after)}
        )
        return site, origin, _with_cors(response, origin)
    return site, origin, None


@csrf_exempt
def track(request):
    """POST /api/v1/track: a batch of up to 100 events. 202 with per-event errors for bad ones."""
    if request.method == "OPTIONS":
        return _preflight(site_for_key(request.GET.get("k", "")), request.headers.get("Origin", ""))
    if request.method != "POST":
        return error_response(405, "method_not_allowed", "Use POST.")
    origin = ""
    try:
        membership, _token = membership_for_bearer(request.headers.get("Authorization", ""))
    except AuthenticationFailed as error:
        return error_response(401, "not_authenticated", str(error.detail))
    if membership is not None:
        if not membership.has_perm(LEADS_MANAGE):
            return error_response(403, "permission_denied", "Your role does not allow this action.")
        site, workspace = None, membership.workspace
    else:
        site, origin, refused = _site_request(request)
        if refused is not None:
            return refused
        workspace = site.workspace
    content_type = (request.content_type or "").lower()
    # The snippet sends text/plain so the browser needs no preflight; the body is JSON either way.
    if content_type not in ("application/json", "text/plain", ""):
        return _with_cors(error_response(415, "unsupported_media_type", "Send JSON (application/json or text/plain)."), origin)
    try:
        payload = parse_json(request.body)
        result = batch_ingest(
            workspace=workspace,
            payload=payload,
            site=site,
            user_agent=request.headers.get("User-Agent", ""),
        )
    except ValueError as error:
        fields = getattr(error, "fields", {}) if isinstance(error, BatchError) else {}
        return _with_cors(error_response(400, "malformed_body" if not fields else "validation_error", str(error), fields), origin)
    if not result.accepted:
        fields = {key: message for error in result.errors for key, message in error["fields"].items()}
        response = error_response(400, "validation_error", "No event in the batch is valid.", fields)
        return _with_cors(response, origin)
    enqueue_track_processing(workspace.pk, result.visitor_keys, result.lead_ids)
    body = {"accepted": result.accepted, "rejected": len(result.errors), "errors": result.errors}
    return _with_cors(JsonResponse(body, status=202), origin)


@csrf_exempt
def track_config(request):
    """GET /api/v1/track/config?k=: what the snippet needs to know about its site."""
    if request.method == "OPTIONS":
        return _preflight(site_for_key(request.GET.get("k", "")), request.headers.get("Origin", ""))
    site, origin, refused = _site_request(request)
    if refused is not None:
        return refused
    config = {
        "forms": {
            "include": site.form_include,
            "exclude": site.form_exclude,
            "fieldMapping": site.field_mapping,
            "trackEvents": site.form_events,
        },
        "sessionTimeoutMinutes": settings.TRACK_SESSION_TIMEOUT_MINUTES,
    }
    response = JsonResponse(config)
    response["Cache-Control"] = "max-age=60"
    return _with_cors(response, origin)


@csrf_exempt
def personalization_for_visitor(request):
    """GET /api/v1/personalization?k=&visitor=: the page changes for this visitor."""
    if request.method == "OPTIONS":
        return _preflight(site_for_key(request.GET.get("k", "")), request.headers.get("Origin", ""))
    site, origin, refused = _site_request(request)
    if refused is not None:
        return refused
    visitor_key = request.GET.get("visitor", "")
    if not ingest.ID_PATTERN.match(visitor_key):
        return _with_cors(
            error_response(400, "validation_error", "visitor is required.", {"visitor": "The visitor id the snippet set."}), origin
        )
    changes = personalization.changes_for_visitor(workspace=site.workspace, visitor_key=visitor_key)
    response = JsonResponse({"changes": changes})
    response["Cache-Control"] = "no-store"
    return _with_cors(response, origin)


@require_GET
def snippet(request):
    """GET /t.js: the tracking script. Installed with one tag carrying the site key."""
    response = HttpResponse(SNIPPET_PATH.read_bytes(), content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=3600"
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _pixel_response():
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0"
    return response


@require_GET
def noscript_pixel(request):
    """GET /t.gif?k=&u=: the <noscript> image. A page view without JavaScript is recorded, flagged
    as a likely bot (no-JS beacon) and left out of engagement and scoring."""
    site = site_for_key(request.GET.get("k", ""))
    if site is None or over_limit(f"track-site:{site.pk}", site.rate_limit_per_minute):
        return _pixel_response()
    url = (request.GET.get("u") or request.headers.get("Referer", ""))[:1000]
    if url:
        TrackEvent.objects.create(
            workspace=site.workspace,
            site=site,
            kind=EventKind.PAGEVIEW,
            name=EventKind.PAGEVIEW,
            occurred_at=timezone.now(),
            url=url,
            user_agent=request.headers.get("User-Agent", "")[:300],
            is_bot=True,
            bot_reason="no_js",
            # No cookie without JavaScript: each such view is its own anonymous visitor.
            visitor_key=f"nojs-{timezone.now().timestamp():.6f}".replace(".", "-"),
            processed_at=timezone.now(),
        )
    return _pixel_response()


def _email_data(token: str) -> dict | None:
    try:
        data = signing.loads(token, salt=EMAIL_TOKEN_SALT)
    except signing.BadSignature:
        return None
    return data if isinstance(data, dict) and data.get("l") and data.get("w") else None


def _email_event(request, data: dict, name: str, extra: dict) -> None:
    from leads.models import Lead

    lead = Lead.objects.filter(pk=data["l"], workspace_id=data["w"], deleted_at__isnull=True).only("pk", "workspace_id").first()
    if lead is None:
        return
    user_agent = request.headers.get("User-Agent", "")
    reason = ingest.bot_reason_for_user_agent(user_agent)
    TrackEvent.objects.create(
        workspace_id=lead.workspace_id,
        lead=lead,
        kind=EventKind.EMAIL,
        name=name,
        occurred_at=timezone.now(),
        properties={"campaign": data.get("c", ""), "message": data.get("m", ""), **extra},
        user_agent=user_agent[:300],
        # Mail scanners that fetch every image and link are not the person.
        is_bot=bool(reason) and reason != "no_user_agent",
        bot_reason=reason if reason != "no_user_agent" else "",
    )
    enqueue_track_processing(lead.workspace_id, set(), {str(lead.pk)})
    return lead


@require_GET
def email_open(request, token: str):
    """GET /e/o/<token>.gif: the open pixel of an email we sent."""
    data = _email_data(token)
    if data is not None:
        _email_event(request, data, "email_opened", {})
    return _pixel_response()


@require_GET
def email_click(request, token: str):
    """GET /e/c/<token>: records the click and redirects to the signed link, adding a token with
    which the site's snippet identifies the visitor as this lead."""
    data = _email_data(token)
    if data is None or not data.get("u"):
        return error_response(404, "not_found", "Unknown or damaged link.")
    url = data["u"]
    lead = _email_event(request, data, "email_clicked", {"link": url})
    if lead is not None:
        parts = urlparse(url)
        query = [*parse_qsl(parts.query, keep_blank_values=True), ("_lmt", lead_identify_token(lead))]
        url = urlunparse(parts._replace(query=urlencode(query)))
    return HttpResponseRedirect(url)
