"""The journey catalogue (templates and their scenes, mindblock types, rhythm profiles): editable
with the settings' permission, and never into stranding a session in progress or leaving nothing to
run (services.catalogue's rules, checked under the generator lock in the transaction that saves)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import router, transaction
from django.db.models import Count

from synthetics.access import can_change_synthetics
from synthetics.errors import GeneratorBusy
from synthetics.models import JourneyTemplate, MindblockType, RhythmProfile, Scene
from synthetics.services.catalogue import (
    CatalogueInUse,
    catalogue_change_check,
    catalogue_change_refusal,
    catalogue_runnable_refusal,
)


class CataloguePermissions:
    """Changing the catalogue steers the generator, as changing the settings does: the model's own
    add, change or delete permission and the *change synthetic settings* one. Without the latter
    the catalogue is read-only (the model's view or change permission shows it)."""

    def has_add_permission(self, request, *args):
        return super().has_add_permission(request, *args) and can_change_synthetics(request.user)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and can_change_synthetics(request.user)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and can_change_synthetics(request.user)


def _catalogue_checked(form: forms.ModelForm, **change) -> None:
    """Add the catalogue rule's refusal of `change` to `form`: under the field it names, else
    above the form (services.catalogue)."""
    try:
        catalogue_change_check(row=form.instance, **change)
    except CatalogueInUse as refusal:
        field = refusal.extra.get("field")
        form.add_error(field if field in form.fields else None, refusal.message)
    except GeneratorBusy as busy:
        form.add_error(None, str(busy))


class CatalogueForm(forms.ModelForm):
    """A catalogue row's form: a change to a field that sessions in progress planned is refused
    under that field (services.catalogue), in the transaction that saves the row."""

    def clean(self):
        data = super().clean()
        if self.instance.pk is not None:  # (`instance` still holds the row as it is)
            _catalogue_checked(self, changed=self.changed_data)
            refusal = _runnable_refusal(self.instance, data, self.changed_data)
            if refusal is not None:
                self.add_error(None, refusal)
        return data


def _runnable_refusal(row, data: dict, changed: list[str]) -> str | None:
    """The catalogue's runnable rule for a saved row's form: a template's new state, a scene moved
    to another template (services.catalogue.catalogue_runnable_refusal)."""
    if isinstance(row, JourneyTemplate):
        state = (data.get("is_active", row.is_active), data.get("popularity", row.popularity))
        return catalogue_runnable_refusal(templates={row.pk: state})
    if isinstance(row, Scene) and "template" in changed:
        return catalogue_runnable_refusal(removed_scenes=[row.pk])
    return None


class SceneFormSet(forms.BaseInlineFormSet):
    """A template's scenes: a scene deleted in the inline is checked by the catalogue's rule (its
    other changes by its own form's)."""

    def clean(self):
        deleted = [
            form.instance
            for form in self.forms
            if form.instance.pk is not None and self._should_delete_form(form)
        ]
        refusals = _deletion_refusals(deleted)
        if refusals:
            # Before Django's own check of protected rows, which would list every event.
            raise ValidationError(refusals)
        template = self.instance  # with the template form's changes, not saved yet
        if template.pk is not None and deleted:  # (the template's own state alone: its form's)
            refusal = catalogue_runnable_refusal(
                templates={template.pk: (template.is_active, template.popularity)},
                removed_scenes=[scene.pk for scene in deleted],
            )
            if refusal is not None:
                raise ValidationError(refusal)
        super().clean()


def _deletion_refusals(rows) -> list[str]:
    """The catalogue rule's refusal of deleting each of `rows`, checked under the generator lock."""
    refusals = []
    for row in rows:
        try:
            catalogue_change_check(row=row, delete=True)
        except (CatalogueInUse, GeneratorBusy) as refusal:
            refusals.append(str(refusal))
    return refusals


class CatalogueListFormSet(forms.BaseModelFormSet):
    """The list's editable rows saved together: the runnable rule over all of them at once (each
    row's form sees the others as the database has them, so two templates switched off in one
    save would each pass alone)."""

    def clean(self):
        super().clean()
        if self.model is not JourneyTemplate:
            return
        states = {
            form.instance.pk: (
                form.cleaned_data.get("is_active", form.instance.is_active),
                form.cleaned_data.get("popularity", form.instance.popularity),
            )
            for form in self.forms
            if form.instance.pk is not None and hasattr(form, "cleaned_data")
        }
        refusal = catalogue_runnable_refusal(templates=states)
        if refusal is not None:
            raise ValidationError(refusal)


class CatalogueAdmin(CataloguePermissions, admin.ModelAdmin):
    """A catalogue model's admin: its form and its deletions (the delete page, the bulk delete)
    checked by the catalogue's rule under the generator lock, with the settings' permission."""

    form = CatalogueForm
    list_editable_form = CatalogueForm  # the list's editable columns: the same checks
    delete_confirmation_template = "admin/synthetics/catalogue_delete_confirmation.html"
    delete_selected_confirmation_template = (
        "admin/synthetics/catalogue_delete_selected_confirmation.html"
    )

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=self.list_editable_form, **kwargs)

    def get_changelist_formset(self, request, **kwargs):
        return super().get_changelist_formset(request, formset=CatalogueListFormSet, **kwargs)

    def get_deleted_objects(self, objs, request):
        # A refused deletion: Django's "cannot delete" page, the rule's message as what protects
        # the rows. Asked before the confirmation (GET) it is a look without the lock; when it
        # is confirmed (POST, in the transaction that deletes) it is the check under the lock.
        if request.method == "POST":
            refusals = _deletion_refusals(objs)
        else:
            looked = (catalogue_change_refusal(row=row, delete=True) for row in objs)
            refusals = [refusal for refusal in looked if refusal]
        if not refusals:
            ids = [row.pk for row in objs]
            refusal = catalogue_runnable_refusal(
                removed_templates=ids if self.model is JourneyTemplate else (),
                removed_scenes=ids if self.model is Scene else (),
            )
            refusals += [refusal] if refusal else []
        if refusals:
            return [], {}, set(), refusals
        return super().get_deleted_objects(objs, request)

    def response_action(self, request, queryset):
        # The bulk delete checks (get_deleted_objects) and deletes in one transaction.
        with transaction.atomic(using=router.db_for_write(self.model)):
            return super().response_action(request, queryset)

    def delete_model(self, request, obj):
        self._deletion_checked([obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        self._deletion_checked(queryset)
        super().delete_queryset(request, queryset)

    @staticmethod
    def _deletion_checked(rows) -> None:
        """The rule once more where the rows go (the lock is already held: a no-op unless a
        caller skipped get_deleted_objects)."""
        for row in rows:
            try:
                catalogue_change_check(row=row, delete=True)
            except (CatalogueInUse, GeneratorBusy) as refusal:
                raise PermissionDenied(str(refusal)) from refusal


class SceneInline(CataloguePermissions, admin.TabularInline):
    model = Scene
    form = CatalogueForm
    formset = SceneFormSet
    extra = 0
    fields = (
        "position", "slug", "name", "dwell_median_seconds", "mindblock_rate", "dropoff_weight",
        "error_weight",
    )  # fmt: skip
    ordering = ("position",)


@admin.register(JourneyTemplate)
class JourneyTemplateAdmin(CatalogueAdmin):
    fields = ("slug", "name", "popularity", "is_active")  # the weight before the switch
    list_display = ("name", "slug", "popularity", "is_active", "scene_count")
    list_editable = ("popularity", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [SceneInline]

    def get_queryset(self, request):
        # One query for the list, not one COUNT per template.
        return super().get_queryset(request).annotate(scene_total=Count("scenes"))

    @admin.display(description="scenes", ordering="scene_total")
    def scene_count(self, obj) -> int:
        return obj.scene_total


@admin.register(Scene)
class SceneAdmin(CatalogueAdmin):
    list_display = ("__str__", "name", "position", "dwell_median_seconds", "mindblock_rate")
    list_filter = ("template",)
    list_select_related = ("template",)  # a scene is named by its template
    ordering = ("template__slug", "position")
    search_fields = ("slug", "name", "template__slug")


@admin.register(RhythmProfile)
class RhythmProfileAdmin(CatalogueAdmin):
    list_display = ("name", "slug", "persona", "holiday_factor")
    search_fields = ("name", "slug", "persona")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(MindblockType)
class MindblockTypeAdmin(CatalogueAdmin):
    fields = ("slug", "name", "weight", "is_active")
    list_display = ("name", "slug", "weight", "is_active")
    list_editable = ("weight", "is_active")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
