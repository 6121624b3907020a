from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from leadsmgr.api.errors import error_payload


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _flatten(detail, prefix: str = "") -> dict[str, str]:
    """Turns DRF's nested error detail into {"field.sub[0]": "message"}."""
    if isinstance(detail, dict):
        fields: dict[str, str] = {}
        for key, value in detail.items():
            # List serializers report errors keyed by item index: spell those `field[0]`.
            if isinstance(key, int):
                name = f"{prefix}[{key}]"
            else:
                name = str(key) if not prefix else f"{prefix}.{key}"
            fields.update(_flatten(value, name))
        return fields
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "non_field_errors": " ".join(str(item) for item in detail)}
        fields = {}
        for index, item in enumerate(detail):
            if item:
                fields.update(_flatten(item, f"{prefix}[{index}]"))
        return fields
    return {prefix or "non_field_errors": str(detail)}


def _validation_response(fields: dict[str, str]) -> Response:
    first = next(iter(fields.items()), ("", "Invalid input."))
    message = f"{first[0]}: {first[1]}" if first[0] and first[0] != "non_field_errors" else first[1]
    return Response(error_payload("validation_error", message, fields), status=status.HTTP_400_BAD_REQUEST)


def api_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return _validation_response({key: " ".join(m for e in errors for m in e.messages) for key, errors in exc.error_dict.items()})
        return _validation_response({"non_field_errors": " ".join(exc.messages)})
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.ValidationError):
        return _validation_response(_flatten(exc.detail))
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        code = {"parse_error": "malformed_json", "not_authenticated": "unauthorized", "authentication_failed": "unauthorized"}.get(
            code, code
        )
        response = Response(error_payload(code, str(exc.detail)), status=exc.status_code)
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            response["WWW-Authenticate"] = "Bearer"
            response.status_code = status.HTTP_401_UNAUTHORIZED
        if getattr(exc, "wait", None):
            response["Retry-After"] = str(int(exc.wait))
        return response
    return None
