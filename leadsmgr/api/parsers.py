import json
import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from leadsmgr.api.exceptions import PayloadTooLarge

MAX_JSON_DEPTH = 32
# \u0000, or \ud800-\udfff (a surrogate; a valid pair encodes fine and passes the walk).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def json_depth_exceeds(value, limit: int) -> bool:
    """True when containers nest deeper than `limit`; iterative, so hostile input cannot recurse."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class StrictJSONParser(JSONParser):
    """JSON only, no NaN/Infinity, bounded size and nesting; every failure is a clear 4xx."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        if not raw.strip():
            return {}
        try:
            data = parse_json(raw)
        except ValueError as error:
            raise ParseError(str(error)) from None
        return data


def unstorable_text(value) -> str | None:
    """What in `value` PostgreSQL cannot store as text or jsonb, in any string or key: "nul" (a NUL
    character) or "surrogate" (a lone UTF-16 surrogate, a `\\ud800` escape: not a character, so
    not encodable to UTF-8); else None. Iterative, like json_depth_exceeds."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return "nul"
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return "surrogate"
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def parse_json(raw: bytes):
    """Strict JSON (no NaN or Infinity, no number beyond a double's range, no NUL character, at
    most MAX_JSON_DEPTH levels); raises ValueError saying what is wrong. Shared by the API parser,
    the webhook endpoint and the Track API."""
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"Malformed JSON: {error}") from None
    if json_depth_exceeds(data, MAX_JSON_DEPTH):
        raise ValueError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels.")
    # Only an escape can put a NUL or a lone surrogate in valid JSON: the walk runs when the text has one.
    if _SUSPECT_ESCAPE.search(text):
        problem = unstorable_text(data)
        if problem == "nul":
            raise ValueError("Malformed JSON: a string holds a NUL character (\\u0000), which cannot be stored.")
        if problem == "surrogate":
            raise ValueError("Malformed JSON: a string holds a lone surrogate (\\ud800-\\udfff), which is not a character.")
    return data


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {literal[:40]} is out of range")
    return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")
