from django.conf import settings

from leadsmgr.api.errors import error_response

LIMITED_PREFIXES = ("/api/", "/webhooks/")


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
            if length > settings.API_MAX_BODY_BYTES:
                return error_response(413, "payload_too_large", f"The request body is larger than {settings.API_MAX_BODY_BYTES} bytes.")
        return self.get_response(request)
