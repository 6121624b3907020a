"""POST /webhooks/leads/<key>: the public ingest endpoint. The key in the URL is the only credential."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, ValidationError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from integrations.models import ResponseMode
from integrations.services import (
    IDEMPOTENCY_KEY_MAX,
    IngestConflict,
    WebhookUnavailable,
    submission_ingest,
    submission_status,
    webhook_for_key,
    webhook_for_key_cached,
    webhook_forget,
)
from leads.normalization import InvalidValue
from leadsmgr.api.errors import error_response
from leadsmgr.api.parsers import parse_json, unstorable_text
from leadsmgr.ratelimit import client_ip, over_limit

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _too_many(retry_after: int, scope: str):
    return error_response(
        429, "rate_limited", f"Too many requests for this {scope}; retry in {retry_after} s.", headers={"Retry-After": str(retry_after)}
    )


def _parse(request, raw: bytes) -> dict:
    """The submission as a dict, from JSON or from a plain HTML form; raises InvalidValue."""
    content_type = (request.content_type or "").lower()
    if content_type in FORM_TYPES:
        try:
            fields = {key: values[0] if len(values) == 1 else values for key, values in request.POST.lists()}
        except (TooManyFieldsSent, RequestDataTooBig) as error:
            raise InvalidValue(f"The form could not be read: {error}") from None
        if unstorable_text(fields):
            raise InvalidValue("A form field holds a NUL character (%00), which cannot be stored.")
        return fields
    if content_type and content_type != "application/json":
        raise InvalidValue("unsupported_media_type")
    try:
        payload = parse_json(raw)
    except ValueError as error:
        raise InvalidValue(str(error)) from None
    if not isinstance(payload, dict):
        raise InvalidValue("Send a JSON object.")
    return payload


def _prefers_async(request) -> bool:
    """RFC 7240: `Prefer: respond-async` asks for 202 now and the work later."""
    return any(value.split(";")[0].strip().lower() == "respond-async" for value in request.headers.get("Prefer", "").split(","))


@csrf_exempt
@require_POST
def ingest(request, api_key: str):
    webhook = webhook_for_key_cached(api_key)
    if webhook is None:
        return error_response(404, "not_found", "Unknown webhook key.")
    retry_after = over_limit(f"webhook:{webhook.pk}", settings.WEBHOOK_RATE_LIMIT_PER_KEY)
    if retry_after:
        return _too_many(retry_after, "webhook")
    ip = client_ip(request)
    retry_after = over_limit(f"webhook-ip:{ip}", settings.WEBHOOK_RATE_LIMIT_PER_IP)
    if retry_after:
        return _too_many(retry_after, "address")

    limit = settings.WEBHOOK_MAX_BODY_BYTES
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
        return error_response(413, "payload_too_large", f"The body is larger than {limit} bytes.")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return error_response(413, "payload_too_large", f"The body is larger than {limit} bytes.")
    request._body = raw  # lets request.POST parse the form body already read
    try:
        payload = _parse(request, raw)
    except InvalidValue as error:
        if str(error) == "unsupported_media_type":
            return error_response(415, "unsupported_media_type", "Send application/json or a form (application/x-www-form-urlencoded).")
        return error_response(400, "malformed_body", str(error))

    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        return error_response(
            400, "validation_error", "Idempotency-Key is too long.", {"Idempotency-Key": f"At most {IDEMPOTENCY_KEY_MAX} characters."}
        )
    for attempt in (1, 2):
        queued = webhook.response_mode == ResponseMode.QUEUED or _prefers_async(request)
        if not queued:
            # Capturing now writes the lead with the webhook's pipeline and stage: read them fresh.
            webhook = webhook_for_key(api_key)
            if webhook is None:
                return error_response(404, "not_found", "Unknown webhook key.")
        try:
            answer = submission_ingest(
                webhook=webhook,
                payload=payload,
                raw_body=raw,
                idempotency_key=key,
                ip=ip,
                user_agent=request.headers.get("User-Agent", ""),
                referer=request.headers.get("Referer", "") if (request.content_type or "") in FORM_TYPES else "",
                queued=queued,
            )
            break
        except WebhookUnavailable:
            # Paused, re-keyed, deleted or edited since this process read it: read it again, and
            # answer as the webhook is now (an unknown key, or its new settings).
            webhook_forget(webhook.key_hash)
            webhook = webhook_for_key_cached(api_key) if attempt == 1 else None
            if webhook is None:
                return error_response(404, "not_found", "Unknown webhook key.")
        except IngestConflict:
            return error_response(
                409,
                "idempotency_conflict",
                "This Idempotency-Key was used with a different body.",
                {"Idempotency-Key": "Reused with a different body."},
            )
        except ValidationError as error:
            fields = {key: " ".join(messages) for key, messages in error.message_dict.items()}
            first = next(iter(fields.items()))
            return error_response(400, "validation_error", f"{first[0]}: {first[1]}", fields)
    response = JsonResponse(answer.body, status=answer.status_code)
    if answer.replayed:
        response["Idempotent-Replayed"] = "true"
    if answer.status_code == 202 and _prefers_async(request):
        response["Preference-Applied"] = "respond-async"
    return response


@require_GET
def submission(request, api_key: str, submission_id: str):
    """GET /webhooks/leads/<key>/submissions/<id>: what became of a submission (a queued one's lead,
    once captured). The webhook's key is the credential, as for posting."""
    webhook = webhook_for_key(api_key)
    if webhook is None:
        return error_response(404, "not_found", "Unknown webhook key.")
    body = submission_status(webhook=webhook, submission_id=submission_id)
    if body is None:
        return error_response(404, "not_found", "No such submission for this webhook.")
    return JsonResponse(body)
