"""What the admin's steering forms (the settings row, an incident) share: their raw values read as
the API reads them, then their rule checked under the settings row's lock."""

from __future__ import annotations

from collections.abc import Callable

from django import forms

from synthetics.models import SyntheticSettings


class SteeringForm(forms.ModelForm):
    """A form that steers the generator. Its raw values are first read as the API reads them
    (synthetics.inputs: Django's own fields would take "٥", " 5", "0_5", "5.0" or a trimmed slug; a value
    left empty is the form's own business, required or not), then its rule is checked under the
    settings row's lock, which the admin holds until the save in the same transaction (the
    services take it too: no settings change or incident comes in between)."""

    raw_readers: dict[str, Callable[[str], object]] = {}

    def clean(self):
        data = super().clean()
        self.raw_values_read()
        if not self.errors:
            SyntheticSettings.objects.select_for_update().get(pk=1)
            self.clean_under_lock(data)
        return data

    def raw_values_read(self) -> None:
        """Add each refused raw value's reason under its field."""
        for name, read in self.raw_readers.items():
            raw = self.data.get(self.add_prefix(name), "")
            if raw == "" or name not in self.fields:
                continue
            try:
                read(raw)
            except ValueError as refusal:
                self.add_error(name, str(refusal))

    def clean_under_lock(self, data: dict) -> None:
        """Add the form's own rule's refusals of the cleaned `data`."""
