"""Forms of the production-scheduling pages: they validate input; scheduling.services writes."""

from django import forms
from django.utils.translation import gettext_lazy as _

from scheduling.engine import family
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
