"""Forms of the production-scheduling pages: they validate input; scheduling.services writes."""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from scheduling.engine import family
from scheduling.engine.instance import MAX_DURATION
from scheduling.engine.table import ROLES
from scheduling.models import Method
from scheduling.templatetags.scheduling_tags import signed_percent

FORMATS = [("", _("Detect from the file")), ("orlib", "OR-Library"), ("taillard", "Taillard"), ("csv", "CSV")]


class ProblemUploadForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    file = forms.FileField(
        label=_("Problem file"),
        help_text=_("OR-Library (n m, then a line per job of machine/duration pairs), Taillard, or CSV of operations."),
    )
    format = forms.ChoiceField(label=_("Format"), choices=FORMATS, required=False)


def policy_label(version) -> str:
    """How a policy version is named in a select: department/model vN (aliases), its held-out gap."""
    aliases = ", ".join(a.name for a in version.aliases.all())
    gap = version.metrics.get("mean_gap")
    text = f"{version.model.department.slug}/{version.model.slug} v{version.number}" + (f" ({aliases})" if aliases else "")
    return text + (f" · {signed_percent(gap)}" if isinstance(gap, int | float) else "")


class RunForm(forms.Form):
    method = forms.ChoiceField(label=_("Method"), choices=Method.choices, initial=Method.QLEARNING)
    policy_version = forms.ChoiceField(
        label=_("Learnt policy"),
        required=False,
        help_text=_("For the method “Learnt policy”: applied as it is; its mean gap to the best rule on unseen shops."),
    )
    time_limit = forms.FloatField(label=_("Time limit (seconds)"), initial=10, min_value=0.1, max_value=3600)
    seed = forms.IntegerField(label=_("Seed"), initial=0, min_value=0, max_value=2**31 - 1)
    breakdowns_seed = forms.IntegerField(
        label=_("Simulate breakdowns (seed)"),
        required=False,
        min_value=0,
        max_value=2**31 - 1,
        help_text=_("Leave empty for none; machines need an MTBF and MTTR."),
    )
    replications = forms.IntegerField(
        label=_("Robustness: replications of breakdowns"),
        required=False,
        min_value=0,
        max_value=200,
        help_text=_("How the schedule holds up over this many seeded draws of breakdowns (right shift and re-dispatch)."),
    )
    compare = forms.BooleanField(
        label=_("Also run every dispatching rule and CP-SAT for comparison"), required=False, initial=False
    )

    def __init__(self, *args, policies=(), **kwargs):
        """`policies`: the policy versions the person may apply (scheduling.selectors.policy_versions_usable);
        without any, neither the method nor the select is offered."""
        super().__init__(*args, **kwargs)
        self.policies = {str(v.pk): v for v in policies}
        if self.policies:
            self.fields["policy_version"].choices = [("", "—"), *((pk, policy_label(v)) for pk, v in self.policies.items())]
        else:
            del self.fields["policy_version"]
            self.fields["method"].choices = [c for c in Method.choices if c[0] != Method.POLICY]

    def chosen_policy(self):
        """The policy version to apply: the one selected, for the method `policy` only."""
        if self.cleaned_data.get("method") != Method.POLICY:
            return None
        return self.policies.get(self.cleaned_data.get("policy_version") or "")


class PolicyTrainForm(forms.Form):
    """A family of generated shops to train a reusable policy on, and the model that takes the version."""

    model = forms.ChoiceField(
        label=_("Policy model"), required=False, help_text=_("Add a version to one of the department's policy models…")
    )
    model_name = forms.CharField(label=_("…or register a new one named"), required=False, max_length=200)
    jobs_min = forms.IntegerField(label=_("Jobs, from"), initial=5, min_value=2, max_value=family.MAX_JOBS)
    jobs_max = forms.IntegerField(label=_("Jobs, to"), initial=10, min_value=2, max_value=family.MAX_JOBS)
    machines_min = forms.IntegerField(label=_("Machines, from"), initial=3, min_value=2, max_value=family.MAX_MACHINES)
    machines_max = forms.IntegerField(label=_("Machines, to"), initial=5, min_value=2, max_value=family.MAX_MACHINES)
    instances = forms.IntegerField(label=_("Training shops"), initial=8, min_value=1, max_value=family.MAX_INSTANCES)
    breakdowns = forms.BooleanField(
        label=_("Machines break down"), required=False, help_text=_("MTBF and MTTR of each machine derived from its load.")
    )
    seconds = forms.FloatField(label=_("Time budget (seconds)"), initial=60, min_value=0.1, max_value=family.MAX_SECONDS)
    episodes = forms.IntegerField(
        label=_("Episodes"), required=False, min_value=1, max_value=family.MAX_EPISODES,
        help_text=_("Optional: stop after this many episodes (the same seed then gives the same policy)."),
    )  # fmt: skip
    seed = forms.IntegerField(label=_("Seed"), initial=0, min_value=0, max_value=2**31 - 1)

    def __init__(self, *args, models=(), may_register: bool = False, **kwargs):
        """`models`: the department's policy models the person may train into; `may_register`: whether
        they may register a new one (maintainers), else the new-model field is left out."""
        super().__init__(*args, **kwargs)
        # Help texts with numbers in them: formatted here, in the request's language.
        self.fields["instances"].help_text = _(
            "Generated Taillard-style shops, sizes drawn from the ranges; %(count)s others measure the policy."
        ) % {"count": family.Family.held_out}
        self.fields["seconds"].help_text = _("At most %(max)s seconds.") % {"max": int(family.MAX_SECONDS)}
        self.models = {str(m.pk): m for m in models}
        choices = [(pk, m.name) for pk, m in self.models.items()]
        if may_register:
            self.fields["model"].choices = [("", _("— a new model —")), *choices]
        else:
            self.fields["model"].choices = choices
            self.fields["model"].required = True
            del self.fields["model_name"]

    def target(self) -> tuple:
        """(the chosen model or None, the new model's name)."""
        return self.models.get(self.cleaned_data["model"]), self.cleaned_data.get("model_name", "")

    def spec(self) -> dict:
        data = self.cleaned_data
        return {
            "jobs": [data["jobs_min"], data["jobs_max"]], "machines": [data["machines_min"], data["machines_max"]],
            "instances": data["instances"], "breakdowns": data["breakdowns"], "seconds": data["seconds"],
            "episodes": data["episodes"], "seed": data["seed"],
        }  # fmt: skip

    @staticmethod
    def field_for(key: str) -> str | None:
        """The form field a service error names (scheduling.policies: jobs, machines, model's name…)."""
        return {"jobs": "jobs_min", "machines": "machines_min", "name": "model_name", "slug": "model_name"}.get(key, key)


# --- a problem built from a dataset version ---------------------------------------------------------

# The roles a dataset's columns are mapped to (scheduling.engine.table.ROLES), with the column names
# guessed for each when a version is chosen (compared lower-case, spaces and hyphens as "_").
MAPPING_GUESSES = {
    "job": ("job", "job_id", "order", "order_id", "作业", "工单"),
    "sequence": ("sequence", "seq", "op", "operation", "step", "工序"),
    "machine": ("machine", "machine_id", "station", "resource", "机器", "设备"),
    "duration": ("duration", "processing_time", "time", "minutes", "时长", "加工时间"),
    "due": ("due", "due_date", "交期"),
    "release": ("release", "release_time", "释放时间"),
    "weight": ("weight", "priority", "权重"),
}


def _plain(column: str) -> str:
    return column.strip().lower().replace(" ", "_").replace("-", "_")


class DatasetProblemForm(forms.Form):
    """Step 1 chooses the version; step 2 (the version known) maps its columns to the roles."""

    name = forms.CharField(label=_("Name"), max_length=200)
    dataset_version = forms.ChoiceField(
        label=_("Dataset version"),
        help_text=_("One row per operation; a published version of your department's or shared with it."),
    )
    job = forms.ChoiceField(label=_("Job"), help_text=_("Its values name the jobs."))
    sequence = forms.ChoiceField(label=_("Sequence"), required=False, help_text=_("Order within the job; else the row order."))
    machine = forms.ChoiceField(label=_("Machine"), help_text=_("Names or numbers; they become the machines' names."))
    duration = forms.ChoiceField(label=_("Duration"), help_text=_("Whole time units."))
    due = forms.ChoiceField(label=_("Due date"), required=False, help_text=_("Per job; the same on each of its rows."))
    release = forms.ChoiceField(label=_("Release time"), required=False, help_text=_("Per job."))
    weight = forms.ChoiceField(label=_("Weight"), required=False, help_text=_("Per job; 1 when not given."))
    alternatives = forms.BooleanField(
        label=_("Alternative machines (flexible job shop)"),
        required=False,
        help_text=_(
            "Rows with the same job and sequence are one operation, one row per machine that can run it with its "
            "duration there. The sequence is then needed on every row, and each machine once per operation."
        ),
    )

    ROLES = ROLES  # scheduling.engine.table's, each a field above

    def __init__(self, *args, versions=(), **kwargs):
        kwargs.setdefault("auto_id", "id_dataset_%s")  # it shares the scheduling page with the upload form
        super().__init__(*args, **kwargs)
        self.versions = {str(v.pk): v for v in versions}
        self.fields["dataset_version"].choices = [("", "—")] + [
            (pk, _("%(version)s · %(rows)s rows") % {"version": v, "rows": v.row_count}) for pk, v in self.versions.items()
        ]
        source = self.data if self.is_bound else self.initial
        self.version = self.versions.get(str(source.get("dataset_version") or ""))
        columns = [c["name"] for c in self.version.schema] if self.version else []
        for role in self.ROLES:
            field = self.fields[role]
            field.choices = [("", "—")] + [(c, c) for c in columns]
            if self.version is None:
                field.required = False  # step 1: only the version is asked for
            if not self.is_bound and self.initial.get(role) not in columns:  # a column of another version, or none
                self.initial[role] = next((c for c in columns if _plain(c) in MAPPING_GUESSES[role]), "")

    def role_fields(self):
        return [self[role] for role in self.ROLES]

    def mapping(self) -> dict[str, str]:
        return {role: self.cleaned_data[role] for role in self.ROLES if self.cleaned_data.get(role)}

    @staticmethod
    def field_for(key: str) -> str:
        """A service error's field (`mapping.duration`) as this form's (`duration`)."""
        return key.removeprefix("mapping.")


# --- the table editor ------------------------------------------------------------------------------

# Rows the editor takes; larger problems are uploaded as files or sent through the API. With every
# cell a form field, this bounds a request's fields well inside DATA_UPLOAD_MAX_NUMBER_FIELDS.
EDITOR_MAX_ROWS = {"machines": 200, "jobs": 200, "operations": 1000}
EDITOR_BLANK_ROWS = 3  # blank rows under the filled ones
EDITOR_ADD_ROWS = 5  # rows one "Add rows" adds without JavaScript (static/js/scheduling-editor.js adds one)


class ProblemEditForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class MachineRowForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    mtbf = forms.FloatField(label=_("MTBF"), required=False, min_value=0, help_text=_("Mean time between failures"))
    mttr = forms.FloatField(label=_("MTTR"), required=False, min_value=0, help_text=_("Mean time to repair"))


class JobRowForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    release = forms.IntegerField(label=_("Release"), required=False, min_value=0, initial=0)
    due = forms.IntegerField(label=_("Due date"), required=False, min_value=0)
    weight = forms.FloatField(label=_("Weight"), required=False, min_value=0, initial=1)


class AlternativesField(forms.CharField):
    """Other machines that can run an operation instead, typed in one cell: "mill 2: 14, mill 3: 12" — a
    machine's name, a colon, its duration there; commas or semicolons between them (full-width ，；：
    too). Cleans to [(name, duration), …] and shows such a list (engine.table.to_tables) as that text;
    engine.table.from_tables resolves the names against the machines table."""

    MAX_LENGTH = 2000  # characters: dozens of alternatives; bounds the cell like the others
    SEPARATORS = re.compile(r"[,;，；]")
    WHOLE = re.compile(r"-?[0-9]+")

    def __init__(self, **kwargs):
        super().__init__(strip=True, **kwargs)
        self.widget.attrs["maxlength"] = str(self.MAX_LENGTH)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(f"{name}: {duration}" for name, duration in value)
        return value

    def to_python(self, value) -> list[tuple[str, int]]:
        text = super().to_python(value)
        if len(text) > self.MAX_LENGTH:
            raise ValidationError(
                _("At most %(max)s characters of alternatives per operation."), params={"max": self.MAX_LENGTH}, code="max_length"
            )
        pairs = []
        for item in self.SEPARATORS.split(text.replace("：", ":")):
            item = item.strip()
            if not item:
                continue  # a trailing comma, or two in a row
            name, colon, duration = (part.strip() for part in item.rpartition(":"))
            if not colon:
                message = _("“%(item)s”: write the machine, a colon, then its duration, as in “mill 2: 14”.")
            elif not name:
                message = _("“%(item)s”: name the machine before the colon.")
            elif not self.WHOLE.fullmatch(duration):
                message = _("“%(item)s”: the duration must be a whole number of time units.")
            elif not 0 <= int(duration) <= MAX_DURATION:
                message = _("“%(item)s”: the duration must be from 0 to %(max)s.")
            else:
                pairs.append((name, int(duration)))
                continue
            raise ValidationError(message, params={"item": item, "max": MAX_DURATION}, code="invalid")
        return pairs

    def has_changed(self, initial, data) -> bool:
        try:
            before = [tuple(pair) for pair in initial] if isinstance(initial, list | tuple) else self.to_python(initial)
            return before != self.to_python(data)
        except ValidationError:
            return True


class OperationRowForm(forms.Form):
    job = forms.CharField(label=_("Job"), max_length=100, widget=forms.TextInput(attrs={"list": "editor-job-names"}))
    sequence = forms.IntegerField(label=_("Sequence"), required=False)
    machine = forms.CharField(label=_("Machine"), max_length=100, widget=forms.TextInput(attrs={"list": "editor-machine-names"}))
    duration = forms.IntegerField(label=_("Duration"), min_value=0, max_value=MAX_DURATION)
    alternatives = AlternativesField(
        label=_("Alternatives"),
        required=False,
        widget=forms.TextInput(attrs={"aria-describedby": "alternatives-help"}),  # the syntax, under the table's title
        help_text=_("Other machines that can run it instead, each with its duration there: mill 2: 14, mill 3: 12"),
    )


class RowFormSet(forms.BaseFormSet):
    """The rows of one editor table: any row may be left blank (it is skipped) and rows keep their
    numbers, so the engine's refusals (scheduling.engine.table) land on the row they name."""

    def __init__(self, *args, blank: int = EDITOR_BLANK_ROWS, **kwargs):
        super().__init__(*args, **kwargs)
        self.extra = len(self.initial or ()) + blank

    def initial_form_count(self) -> int:
        return 0  # every row is an "extra" one: blank rows are skipped, prefilled ones may be blanked out

    def rows(self) -> list[dict | None]:
        """Each row's cleaned cells, None for a blank one (call after is_valid)."""
        return [form.cleaned_data if form.has_changed() else None for form in self.forms]

    def raw_rows(self, without: int | None = None) -> list[dict]:
        """The cells as typed, of the rows that are not blank (and not row `without`): to show them again."""
        return [
            {name: form[name].value() for name in form.fields}
            for i, form in enumerate(self.forms)
            if i != without and form.has_changed()
        ]


def _row_formset(form, table: str):
    limit = EDITOR_MAX_ROWS[table]
    return forms.formset_factory(form, formset=RowFormSet, extra=0, max_num=limit, absolute_max=limit, validate_max=True)


EDITOR_TABLES = {
    "machines": _row_formset(MachineRowForm, "machines"),
    "jobs": _row_formset(JobRowForm, "jobs"),
    "operations": _row_formset(OperationRowForm, "operations"),
}
