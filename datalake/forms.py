"""Forms of the data-lake pages; they validate input, the services do the writes."""

from django import forms
from django.utils.translation import gettext_lazy as _


class DatasetCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Comma-separated, e.g. sensors, line-3"))

    def clean_tags(self):
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]


ENCODINGS = [("", _("Detect")), ("utf-8", "UTF-8"), ("gb18030", "GBK / GB18030"), ("latin-1", "Latin-1")]
DELIMITERS = [("", _("Detect")), (",", _("Comma")), (";", _("Semicolon")), ("\t", _("Tab")), ("|", _("Pipe"))]


class UploadForm(forms.Form):
    file = forms.FileField(label=_("File"), help_text=_("CSV, TSV, Excel, JSON Lines, JSON or Parquet; .gz and .zip too."))
    encoding = forms.ChoiceField(label=_("Encoding"), choices=ENCODINGS, required=False)
    delimiter = forms.ChoiceField(label=_("Delimiter"), choices=DELIMITERS, required=False)
    sheet = forms.CharField(label=_("Excel sheet"), required=False, max_length=100)
    skip_bad_lines = forms.BooleanField(label=_("Skip malformed lines (and count them)"), required=False)

    def ingest_options(self) -> dict:
        """Only the options the person set: the engine detects the rest."""
        data = self.cleaned_data
        options = {key: data[key] for key in ("encoding", "delimiter", "sheet") if data.get(key)}
        if data.get("skip_bad_lines"):
            options["skip_bad_lines"] = True
        return options


class RetryForm(forms.Form):
    encoding = forms.ChoiceField(label=_("Encoding"), choices=ENCODINGS, required=False)
    delimiter = forms.ChoiceField(label=_("Delimiter"), choices=DELIMITERS, required=False)
    skip_bad_lines = forms.BooleanField(label=_("Skip malformed lines"), required=False)

    def ingest_options(self) -> dict:
        data = self.cleaned_data
        options = {key: data[key] for key in ("encoding", "delimiter") if data.get(key)}
        if data.get("skip_bad_lines"):
            options["skip_bad_lines"] = True
        return options


RECIPE_EXAMPLE = (
    '[{"op": "drop_duplicates"},\n {"op": "fill_missing", "columns": {"temperature": "median"}},\n'
    ' {"op": "normalise", "columns": ["temperature"], "method": "zscore"}]'
)


class RecipeForm(forms.Form):
    name = forms.CharField(label=_("Recipe name"), max_length=200)
    steps = forms.JSONField(
        label=_("Steps (JSON)"),
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "placeholder": RECIPE_EXAMPLE}),
        help_text=_(
            "Ordered steps: select, rename, cast, filter, drop_duplicates, drop_missing, fill_missing, "
            "clip_outliers, normalise, resample, window, join, sql."
        ),
    )


class SavedQueryForm(forms.Form):
    """Name and department of the query in the SQL editor (the SQL itself is the editor's field)."""

    name = forms.CharField(label=_("Name"), max_length=200)
    department = forms.ModelChoiceField(label=_("Department"), queryset=None, to_field_name="slug")
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, departments=None, **kwargs):
        # No `required` attributes: they would stop the editor's Run button, which shares the form.
        super().__init__(*args, use_required_attribute=False, **kwargs)
        self.fields["department"].queryset = departments
        for field in self.fields.values():  # submitted with the SQL editor's form (templates/datalake/sql.html)
            field.widget.attrs["form"] = "sql-form"
