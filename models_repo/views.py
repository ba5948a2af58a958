from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from lepton.context_processors import current_department


@login_required
def index(request):
    """The part's front page: an honest empty state for the current department until the part lands."""
    return render(request, "models_repo/index.html", {"department": current_department(request)})
