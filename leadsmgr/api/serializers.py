from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer):
    """Input serializer that refuses unknown fields by name.

    Server-owned fields listed in `ignored_fields` (id, score, timestamps, ...) are accepted and
    ignored, so a client may send back what it read; they are never applied.
    """

    ignored_fields: frozenset[str] = frozenset()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            known = set(self.fields) | set(self.ignored_fields)
            unknown = sorted(key for key in data if key not in known)
            if unknown:
                raise serializers.ValidationError({key: "Unknown field." for key in unknown})
        return super().to_internal_value(data)
