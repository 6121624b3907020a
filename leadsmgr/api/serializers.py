from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer):
    """Input serializer that refuses unknown fields by name, alongside any other field errors.

    Server-owned fields listed in `ignored_fields` (id, score, timestamps, ...) are accepted and
    ignored, so a client may send back what it read; they are never applied.
    """

    ignored_fields: frozenset[str] = frozenset()

    def to_internal_value(self, data):
        unknown: dict[str, str] = {}
        if isinstance(data, dict):
            known = set(self.fields) | set(self.ignored_fields)
            unknown = {key: "Unknown field." for key in sorted(data) if key not in known}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if unknown and isinstance(error.detail, dict):
                raise serializers.ValidationError({**error.detail, **unknown}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value
