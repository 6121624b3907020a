from django.conf import settings

from leadsmgr.api.errors import error_response

LIMITED_PREFIXES = ("/api/", "/webhooks/")
# CSV uploads get settings.IMPORT_MAX_BYTES instead of the API's limit.
IMPORT_PATHS = ("/api/v1/leads/import",)


class ApiBodySizeLimitMiddleware:
    """Answers 413 with the JSON error shape before a too-large API body is read at all."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(LIMITED_PREFIXES):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return error_response(400, "bad_request", "Content-Length is not a number.")
            limit = settings.IMPORT_MAX_BYTES if request.path in IMPORT_PATHS else settings.API_MAX_BODY_BYTES
            if length > limit:
                return error_response(413, "payload_too_large", f"The request body is larger than {limit} bytes.")
        return self.get_response(request)
