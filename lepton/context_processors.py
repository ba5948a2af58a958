"""Template context every page gets: the user's departments and the current one."""

from lepton import policy, selectors
from lepton.collab.selectors import unread_notices
from lepton.models import Department

SESSION_DEPARTMENT = "lepton_department"


def current_department(request):
    """The department chosen in the switcher, if the user still belongs to it; else their first."""
    user = request.user
    if not user.is_authenticated:
        return None
    cached = getattr(request, "_lepton_department", False)
    if cached is not False:
        return cached
    departments = list(policy.visible_to(user, Department, "view"))
    chosen = request.session.get(SESSION_DEPARTMENT)
    department = next((d for d in departments if d.slug == chosen), None)
    if department is None and departments:
        mine = policy.user_roles(user)
        department = next((d for d in departments if d.pk in mine), departments[0])
    request._lepton_department = department
    request._lepton_departments = departments
    return department


def lepton(request):
    if not request.user.is_authenticated:
        return {}
    department = current_department(request)
    return {
        "current_department": department,
        "my_departments": request._lepton_departments,
        "my_roles": policy.user_roles(request.user),
        "may_audit": selectors.may_audit(request.user),
        # Called by the template only where it shows the count (one COUNT on notice_unread).
        "unread_notices": lambda: unread_notices(request.user),
    }
