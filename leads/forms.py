from django import forms
from django.core.exceptions import ValidationError

from leads.models import LeadStatus, LifecycleStage
from leads.normalization import normalize_tag


class LeadFieldsForm(forms.Form):
    """The fields a person types on the board; the service normalizes and validates the rest."""

    name = forms.CharField(max_length=200)
    email = forms.CharField(max_length=254, required=False)
    phone = forms.CharField(max_length=40, required=False)
    company = forms.CharField(max_length=200, required=False)
    title = forms.CharField(max_length=200, required=False)

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        data["company"] = {"name": data["company"]} if data.get("company") else None
        return data

    def add_service_errors(self, error: ValidationError) -> None:
        """Shows the service's errors next to the fields they name."""
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)


class LeadCreateForm(LeadFieldsForm):
    tags = forms.CharField(max_length=500, required=False, help_text="Comma-separated, e.g. hot, referral")

    def clean_tags(self) -> list[str]:
        return sorted({normalize_tag(tag) for tag in self.cleaned_data["tags"].split(",") if normalize_tag(tag)})


class LeadEditForm(LeadFieldsForm):
    department = forms.CharField(max_length=120, required=False)
    status = forms.ChoiceField(choices=LeadStatus.choices)
    lifecycle_stage = forms.ChoiceField(choices=LifecycleStage.choices, label="Lifecycle stage")


class NoteForm(forms.Form):
    text = forms.CharField(max_length=10000, strip=True)
