"""The one JSON error shape: {"error": {"code": ..., "message": ..., "fields": {...}}}."""

from django.http import JsonResponse


def error_payload(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_response(status: int, code: str, message: str, fields: dict | None = None, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse(error_payload(code, message, fields), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
