"""Rate limits per API token (or per user for session requests, per IP for anonymous ones).

Fixed windows counted by lepton.counters (one Redis round trip), shared with the predict
fast path (models_repo.api.fastpath), which counts its requests in the same windows: a token
has one limit whichever path answers it. A request the fast path already counted and then
handed to Django carries the verdict in its WSGI environ (`lepton.rate`), so it is not
counted twice.
"""

from rest_framework.throttling import SimpleRateThrottle

from lepton import counters
from lepton.models import ApiToken

# The WSGI environ key of a request already counted: "" when it was allowed, else the wait
# in seconds. Only server code sets environ keys with dots; a client's headers become HTTP_*.
COUNTED = "lepton.rate"


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        return self.ident(request)

    def ident(self, request) -> str:
        if isinstance(request.auth, ApiToken):
            return f"token:{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"ip:{self.get_ident(request)}"

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        counted = request.META.get(COUNTED)
        if counted is not None:
            self._wait = float(counted) if counted else None
        else:
            self._wait, _generation = counters.rate_hit(self.ident(request), self.rate)
        return self._wait is None

    def wait(self):
        return self._wait
