from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _

from lepton.context_processors import current_department
from lepton.errors import NotFound
from monitoring import figures, selectors


@login_required
def index(request):
    """The part's front page: an honest empty state for the current department until the part lands."""
    return render(request, "monitoring/index.html", {"department": current_department(request)})


def drift_panel(user, model_id, *, number: int | None = None) -> dict:
    """The context of templates/monitoring/partials/_drift.html: `drift` (selectors.model_drift) and its figures.

    The model dashboard includes the partial with this context; NotFound when the user may not see the model.
    """
    drift = selectors.model_drift(user, model_id, number=number)
    limits = {"moderate": drift["settings"]["psi_moderate"], "significant": drift["settings"]["psi_significant"]}
    found = [
        figures.psi_bars(drift["features"], title=_("PSI per feature (latest window)"), **limits),
        figures.psi_over_time(drift["history"], title=_("PSI over time"), **limits),
    ]
    return {"drift": drift, "drift_figures": [f for f in found if f is not None]}


@login_required
def model_drift(request, pk):
    """The drift panel of a model alone (the model page loads it with htmx)."""
    try:
        context = drift_panel(request.user, pk)
    except NotFound:
        raise Http404() from None
    return render(request, "monitoring/partials/_drift.html", context)
