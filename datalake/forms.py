"""Forms of the data-lake pages; they validate input, the services do the writes."""

from django import forms
from django.utils.translation import gettext_lazy as _


class DatasetCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Comma-separated, e.g. sensors, line-3"))

    def clean_tags(self):
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]


class DatasetSettingsForm(forms.Form):
    """A dataset's name, description, tags, discoverability and declared quality checks."""

    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(
        label=_("Description"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Markdown: **bold**, lists, links, tables. HTML is removed."),
    )
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Comma-separated, e.g. sensors, line-3"))
    discoverable = forms.BooleanField(
        label=_("Discoverable in other departments"),
        required=False,
        help_text=_("Other departments see the name, description, tags and columns, never the rows."),
    )
    checks = forms.JSONField(
        label=_("Quality checks (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono"}),
        help_text=_(
            "Run on every new version. A list such as "
            '[{"type": "not_null", "column": "machine"}, {"type": "range", "column": "temp", "min": 0, "max": 150, '
            '"blocking": true}]. Types: not_null, unique, range, allowed_values, regex, row_count, schema, freshness; '
            "a blocking check that fails stops publication."
        ),
    )

    def __init__(self, *args, dataset=None, **kwargs):
        if dataset is not None and not args and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": dataset.name,
                "description": dataset.description,
                "tags": ", ".join(dataset.tags or []),
                "discoverable": dataset.discoverable,
                "checks": dataset.checks or [],
            }
        super().__init__(*args, **kwargs)

    def clean_tags(self):
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]

    def clean_checks(self):
        checks = self.cleaned_data["checks"]
        if checks in (None, ""):
            return []
        if not isinstance(checks, list):
            raise forms.ValidationError(_("Give a list of checks, in square brackets."))
        return checks


ENCODINGS = [("", _("Detect")), ("utf-8", "UTF-8"), ("gb18030", "GBK / GB18030"), ("latin-1", "Latin-1")]
DELIMITERS = [("", _("Detect")), (",", _("Comma")), (";", _("Semicolon")), ("\t", _("Tab")), ("|", _("Pipe"))]


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "CSV, TSV, Excel, JSON Lines, JSON or Parquet; .gz and .zip too. Images: a zip with one folder per class "
            "(or images and a labels.csv), PNG, JPEG or BMP."
        ),
    )
    encoding = forms.ChoiceField(label=_("Encoding"), choices=ENCODINGS, required=False)
    delimiter = forms.ChoiceField(label=_("Delimiter"), choices=DELIMITERS, required=False)
    sheet = forms.CharField(label=_("Excel sheet"), required=False, max_length=100)
    skip_bad_lines = forms.BooleanField(label=_("Skip malformed lines (and count them)"), required=False)
    skip_bad_files = forms.BooleanField(label=_("Image zips: skip corrupt or non-image files (and list them)"), required=False)

    def ingest_options(self) -> dict:
        """Only the options the person set: the engine detects the rest."""
        data = self.cleaned_data
        options = {key: data[key] for key in ("encoding", "delimiter", "sheet") if data.get(key)}
        for flag in ("skip_bad_lines", "skip_bad_files"):
            if data.get(flag):
                options[flag] = True
        return options


class RetryForm(forms.Form):
    encoding = forms.ChoiceField(label=_("Encoding"), choices=ENCODINGS, required=False)
    delimiter = forms.ChoiceField(label=_("Delimiter"), choices=DELIMITERS, required=False)
    skip_bad_lines = forms.BooleanField(label=_("Skip malformed lines"), required=False)
    skip_bad_files = forms.BooleanField(label=_("Skip bad image files"), required=False)

    def ingest_options(self) -> dict:
        data = self.cleaned_data
        options = {key: data[key] for key in ("encoding", "delimiter") if data.get(key)}
        for flag in ("skip_bad_lines", "skip_bad_files"):
            if data.get(flag):
                options[flag] = True
        return options


RECIPE_EXAMPLE = (
    '[{"op": "drop_duplicates"},\n {"op": "fill_missing", "columns": {"temperature": "median"}},\n'
    ' {"op": "normalise", "columns": ["temperature"], "method": "zscore"}]'
)


class RecipeStepsForm(forms.Form):
    """The steps and joins of a recipe (the builder in static/js/recipes.js fills both); the service validates them."""

    steps = forms.JSONField(
        label=_("Steps (JSON)"),
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "placeholder": RECIPE_EXAMPLE}),
        help_text=_(
            "Ordered steps: select, rename, cast, filter, drop_duplicates, drop_missing, fill_missing, "
            "clip_outliers, normalise, resample, window, join, sql."
        ),
    )
    joins = forms.JSONField(
        label=_("Joined datasets (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "mono", "placeholder": '{"machines": "<dataset id>"}'}),
        help_text=_("The key a join step names, mapped to the id of a dataset you may use."),
    )

    def clean_steps(self):
        steps = self.cleaned_data["steps"]
        if not isinstance(steps, list) or not steps:
            raise forms.ValidationError(_("Add at least one step."))
        return steps

    def clean_joins(self):
        joins = self.cleaned_data.get("joins") or {}
        if not isinstance(joins, dict):
            raise forms.ValidationError(_("Map each join key to a dataset id."))
        return joins


class RecipeForm(RecipeStepsForm):
    name = forms.CharField(label=_("Recipe name"), max_length=200)

    field_order = ["name", "steps", "joins"]


# What the builder offers; the engine (datalake.engine.recipes, .preview) decides what is valid.
STEP_KINDS = [
    ("select", _("Keep columns")),
    ("rename", _("Rename columns")),
    ("cast", _("Change column types")),
    ("filter", _("Filter rows")),
    ("drop_duplicates", _("Drop duplicate rows")),
    ("drop_missing", _("Drop rows with missing values")),
    ("fill_missing", _("Fill missing values")),
    ("clip_outliers", _("Clip outliers")),
    ("normalise", _("Normalise")),
    ("resample", _("Resample over time")),
    ("window", _("Rolling window")),
    ("join", _("Join another dataset")),
    ("sql", _("SQL")),
]
FILTER_OPS = {
    "eq": "=",
    "ne": "≠",
    "lt": "<",
    "le": "≤",
    "gt": ">",
    "ge": "≥",
    "contains": _("contains"),
    "starts_with": _("starts with"),
    "in": _("is one of"),
    "is_null": _("is missing"),
    "not_null": _("is not missing"),
}
FILL_LABELS = {
    "mean": _("mean"),
    "median": _("median"),
    "mode": _("most frequent value"),
    "forward_fill": _("forward fill"),
    "constant": _("constant"),
}
CAST_LABELS = {
    "int": _("whole number"),
    "float": _("decimal number"),
    "string": _("text"),
    "bool": _("true/false"),
    "date": _("date"),
    "timestamp": _("date and time"),
}
AGGREGATION_LABELS = {
    "mean": _("mean"),
    "min": _("min"),
    "max": _("max"),
    "sum": _("sum"),
    "count": _("count"),
    "first": _("first"),
    "last": _("last"),
    "std": _("standard deviation"),
}
INTERVAL_UNITS = {
    "second": _("seconds"),
    "minute": _("minutes"),
    "hour": _("hours"),
    "day": _("days"),
    "week": _("weeks"),
    "month": _("months"),
    "year": _("years"),
}
BUILDER_TEXT = {
    "add_step": _("Add step"),
    "step": _("Step %(number)s"),
    "up": _("Move up"),
    "down": _("Move down"),
    "remove": _("Remove"),
    "add": _("Add"),
    "add_row": _("Add a row"),
    "column": _("Column"),
    "columns": _("Columns"),
    "columns_all": _("Columns (none chosen: all)"),
    "new_name": _("New name"),
    "type": _("Type"),
    "operator": _("Operator"),
    "value": _("Value"),
    "values_hint": _("Values separated by commas"),
    "combine": _("Keep rows that match"),
    "combine_all": _("all conditions"),
    "combine_any": _("any condition"),
    "method": _("Method"),
    "order_by": _("Order by (forward fill)"),
    "partition_by": _("Per group of"),
    "iqr": _("Interquartile range × k"),
    "percentile": _("Percentiles"),
    "k": _("k"),
    "low": _("Low percentile (0–1)"),
    "high": _("High percentile (0–1)"),
    "minmax": _("Min–max (0 to 1)"),
    "zscore": _("z-score (mean 0, standard deviation 1)"),
    "time": _("Time column"),
    "every": _("Every"),
    "group_by": _("Group by"),
    "aggregation": _("Aggregation"),
    "aggregations": _("Aggregations"),
    "window_order": _("Order rows by"),
    "size": _("Rows in the window"),
    "dataset": _("Dataset"),
    "choose": _("Choose…"),
    "key": _("Key name"),
    "left": _("Column here"),
    "right": _("Column there"),
    "how": _("Keep"),
    "how_inner": _("only matching rows (inner)"),
    "how_left": _("every row here (left)"),
    "sql": _("SQL over the previous step, seen as the table input"),
    "empty": _("No steps yet: choose what to do first and add a step."),
    "no_datasets": _("No other dataset you may use has a published version."),
    "unknown_columns": _("Column names after a SQL step are not known here; type them."),
}


def recipe_builder_config(columns: list[dict], datasets: list[dict]) -> dict:
    """What static/js/recipes.js needs: the input's columns [{name, type}], the datasets a join may
    use [{id, label, columns}], the choices of each widget and its translated words."""
    from datalake.engine.preview import OPS
    from datalake.engine.recipes import CAST_TYPES, RESAMPLE_AGGS, WINDOW_AGGS

    return {
        "columns": columns,
        "datasets": datasets,
        "kinds": STEP_KINDS,
        "filterOps": [(op, FILTER_OPS[op]) for op in OPS],
        "fillMethods": list(FILL_LABELS.items()),
        "castTypes": [(name, CAST_LABELS[name], duck) for name, duck in CAST_TYPES.items()],
        "resampleAggs": [(agg, AGGREGATION_LABELS[agg]) for agg in RESAMPLE_AGGS],
        "windowAggs": [(agg, AGGREGATION_LABELS[agg]) for agg in WINDOW_AGGS],
        "units": list(INTERVAL_UNITS.items()),
        "text": BUILDER_TEXT,
    }


def _names(values) -> str:
    if isinstance(values, dict):
        values = list(values)
    return ", ".join(str(v) for v in values or [])


def _filter_text(spec: dict) -> str:
    op = spec.get("op")
    value = spec.get("value")
    if op in ("is_null", "not_null"):
        return f"{spec.get('column')} {FILTER_OPS[op]}"
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return f"{spec.get('column')} {FILTER_OPS.get(op, op)} {value}"


def _aggregations_text(aggregations: dict) -> str:
    parts = []
    for name, aggs in (aggregations or {}).items():
        aggs = aggs if isinstance(aggs, list) else [aggs]
        parts.append(f"{name} ({', '.join(str(AGGREGATION_LABELS.get(a, a)) for a in aggs)})")
    return ", ".join(parts)


def describe_step(step: dict) -> str:
    """One readable line for a cleaned step, e.g. "Fill missing: 温度 → median"."""
    # Called gettext (not an alias) so that makemessages finds these texts.
    from django.utils.translation import gettext

    op = step.get("op")
    if op == "select":
        return gettext("Keep columns: %(columns)s") % {"columns": _names(step.get("columns"))}
    if op == "rename":
        pairs = ", ".join(f"{a} → {b}" for a, b in (step.get("columns") or {}).items())
        return gettext("Rename: %(pairs)s") % {"pairs": pairs}
    if op == "cast":
        pairs = ", ".join(f"{a} → {CAST_LABELS.get(b, b)}" for a, b in (step.get("columns") or {}).items())
        return gettext("Change types: %(pairs)s") % {"pairs": pairs}
    if op == "filter":
        joiner = f" {gettext('and')} " if step.get("combine", "all") == "all" else f" {gettext('or')} "
        return gettext("Keep rows where %(conditions)s") % {
            "conditions": joiner.join(_filter_text(f) for f in step.get("filters", []))
        }
    if op in ("drop_duplicates", "drop_missing"):
        subset = step.get("subset")
        if op == "drop_duplicates":
            return (
                gettext("Drop duplicate rows (by %(columns)s)") % {"columns": _names(subset)}
                if subset
                else gettext("Drop duplicate rows")
            )
        return (
            gettext("Drop rows missing %(columns)s") % {"columns": _names(subset)}
            if subset
            else gettext("Drop rows with missing values")
        )
    if op == "fill_missing":
        parts = []
        for name, method in (step.get("columns") or {}).items():
            if isinstance(method, dict):
                parts.append(f"{name} → {FILL_LABELS['constant']} {method.get('value')}")
            else:
                parts.append(f"{name} → {FILL_LABELS.get(method, method)}")
        line = gettext("Fill missing: %(pairs)s") % {"pairs": ", ".join(parts)}
        if step.get("order_by"):
            line += " " + gettext("(ordered by %(column)s)") % {"column": step["order_by"]}
        return line
    if op == "clip_outliers":
        if step.get("method") == "percentile":
            how = gettext("percentiles %(low)s–%(high)s") % {"low": step.get("low"), "high": step.get("high")}
        else:
            how = gettext("IQR × %(k)s") % {"k": step.get("k", 1.5)}
        return gettext("Clip outliers (%(how)s): %(columns)s") % {"how": how, "columns": _names(step.get("columns"))}
    if op == "normalise":
        method = BUILDER_TEXT.get(step.get("method", "minmax"), step.get("method"))
        return gettext("Normalise (%(method)s): %(columns)s") % {"method": method, "columns": _names(step.get("columns"))}
    if op == "resample":
        line = gettext("Resample %(time)s every %(interval)s: %(aggregations)s") % {
            "time": step.get("time"),
            "interval": step.get("interval"),
            "aggregations": _aggregations_text(step.get("aggregations")),
        }
        if step.get("by"):
            line += " " + gettext("(per %(columns)s)") % {"columns": _names(step["by"])}
        return line
    if op == "window":
        return gettext("Rolling window of %(size)s rows ordered by %(order)s: %(aggregations)s") % {
            "size": step.get("size"),
            "order": step.get("order_by"),
            "aggregations": _aggregations_text(step.get("aggregations")),
        }
    if op == "join":
        on = step.get("on")
        on_text = ", ".join(f"{a} = {b}" for a, b in on.items()) if isinstance(on, dict) else _names(on)
        how = {"inner": gettext("inner"), "left": gettext("left")}.get(step.get("how", "inner"), step.get("how"))
        values = {"input": step.get("input"), "on": on_text, "how": how}
        return gettext("Join %(input)s on %(on)s (%(how)s)") % values
    if op == "sql":
        text = " ".join(str(step.get("sql", "")).split())
        return gettext("SQL: %(sql)s") % {"sql": text if len(text) <= 80 else text[:79] + "…"}
    return str(op)


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


class DatabaseImportForm(forms.Form):
    """A dataset's database import; the password is never shown again (left empty, it is kept)."""

    url = forms.CharField(
        label=_("Database URL"),
        max_length=500,
        help_text=_("postgresql://user@host:5432/database or mysql://user@host:3306/database; the password goes below."),
        widget=forms.TextInput(attrs={"class": "mono", "placeholder": "postgresql://reader@mes-db:5432/plant"}),
    )
    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Stored encrypted. Leave empty to keep the stored password."),
    )
    clear_password = forms.BooleanField(label=_("Remove the stored password"), required=False)
    query = forms.CharField(
        label=_("Query"),
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 4, "class": "mono", "placeholder": "SELECT * FROM batches WHERE made >= '2024-01-01'"}
        ),
        help_text=_("One read-only SELECT; it runs in a read-only transaction."),
    )
    interval_minutes = forms.IntegerField(
        label=_("Run every (minutes)"),
        required=False,
        min_value=1,
        help_text=_("Leave empty to run only when asked. Each run with changed rows becomes a new version."),
    )
    enabled = forms.BooleanField(label=_("Scheduled runs enabled"), required=False, initial=True)

    def __init__(self, *args, instance=None, **kwargs):
        if instance is not None and not args and "initial" not in kwargs:
            kwargs["initial"] = {
                "url": instance.url,
                "query": instance.query,
                "interval_minutes": instance.interval_minutes,
                "enabled": instance.enabled,
            }
        super().__init__(*args, **kwargs)
        if instance is None:
            del self.fields["clear_password"]


class RecallForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is this data bad?"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Shown on every page the recall flags and sent to their departments."),
    )  # fmt: skip
    block_predictions = forms.BooleanField(
        label=_("Stop predictions of affected models until their maintainers acknowledge"), required=False
    )


class ColumnClassificationForm(forms.Form):
    """One level and one masking mode per column of the latest version (datalake.services.sensitive)."""

    LEVELS = [("public", _("Public")), ("personal", _("Personal")), ("confidential", _("Confidential"))]
    MODES = [("hide", _("Hidden")), ("hash", _("Hashed"))]

    def __init__(self, *args, columns: list[str], rules: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.column_names = columns
        for name in columns:
            rule = rules.get(name) or {}
            # Not required: a column left out of the POST keeps its classification.
            self.fields[f"level-{name}"] = forms.ChoiceField(
                label=_("Classification of %(column)s") % {"column": name},
                choices=self.LEVELS,
                initial=rule.get("level", "public"),
                required=False,
            )
            self.fields[f"mode-{name}"] = forms.ChoiceField(
                label=_("Masking of %(column)s") % {"column": name},
                choices=self.MODES,
                initial=rule.get("mode", "hash"),
                required=False,
            )

    def rows(self):
        return [(name, self[f"level-{name}"], self[f"mode-{name}"]) for name in self.column_names]

    def columns(self) -> dict:
        return {
            name: {"level": self.cleaned_data[f"level-{name}"], "mode": self.cleaned_data[f"mode-{name}"] or "hash"}
            for name in self.column_names
            if self.cleaned_data.get(f"level-{name}")
        }
