"""API access: authenticated users only, and a token may do only what its scopes allow.

Scopes: `read` for safe methods, `write` for changes, `predict` for prediction endpoints
(views mark those with `required_scope = "predict"`). Session users (the browser) have all
scopes. Object access itself is decided by lepton.policy through each view's queryset.
"""

from rest_framework import permissions

from lepton.models import ApiToken


class TokenScopePermission(permissions.BasePermission):
    message = "This token's scopes do not allow this request."

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        required = getattr(view, "required_scope", None) or ("read" if request.method in permissions.SAFE_METHODS else "write")
        if required not in token.scopes:
            self.message = f"This token lacks the '{required}' scope (it has: {', '.join(token.scopes) or 'none'})."
            return False
        return True
