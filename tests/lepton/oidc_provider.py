"""A tiny OpenID Connect provider for the single sign-on tests, on 127.0.0.1 at a random port.

It speaks the parts of the protocol Lepton uses, over real HTTP: discovery, JWKS, /authorize
(the person who "signs in" is set by `sign_in_as`; it answers at once with a redirect that
carries a code), /token (checks the client secret, the redirect URI, single use of the code
and the PKCE verifier, and issues an RS256 ID token) and /userinfo. Tests change what it
issues through `id_token_claims` (merged into the next ID token's claims), `signing_key`
(forge a signature), `deny` (answer the authorization with error=access_denied) and
`groups_in_userinfo_only`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OidcProvider:
    def __init__(self, key: rsa.RSAPrivateKey, *, client_id: str = "lepton", client_secret: str = "s3cret/+&"):
        self.key = key
        self.kid = "key-1"
        self.client_id = client_id
        self.client_secret = client_secret
        self.person: dict = {}
        self.id_token_claims: dict = {}
        self.signing_key: rsa.RSAPrivateKey | None = None
        self.deny = False
        self.groups_in_userinfo_only = False
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.token_requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OidcProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sign_in_as(self, sub: str, *, groups: list[str] | None = None, **claims) -> None:
        """Who the next /authorize signs in: `sub`, their groups and other claims (email, preferred_username…)."""
        self.person = {"sub": sub, **claims}
        if groups is not None:
            self.person["groups"] = groups

    # --- what the endpoints answer -------------------------------------------------------

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def authorize(self, query: dict) -> tuple[int, dict, dict]:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return 400, {}, {"error": "invalid_request", "error_description": "unknown client or no redirect_uri"}
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return 400, {}, {"error": "invalid_request", "error_description": "code flow with S256 PKCE only"}
        if "openid" not in query.get("scope", "").split():
            return 400, {}, {"error": "invalid_scope"}
        if self.deny:
            answer = {"error": "access_denied", "error_description": "The user cancelled", "state": query.get("state", "")}
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "person": dict(self.person),
                "nonce": query.get("nonce"),
                "redirect_uri": redirect_uri,
                "challenge": query.get("code_challenge"),
            }
            answer = {"code": code, "state": query.get("state", "")}
        return 302, {"Location": f"{redirect_uri}?{urlencode(answer)}"}, {}

    def token(self, form: dict, authorization: str) -> tuple[int, dict]:
        self.token_requests.append(dict(form))
        if not authorization.startswith("Basic "):
            return 401, {"error": "invalid_client", "error_description": "client authentication missing"}
        client_id, _sep, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        if (unquote(client_id), unquote(secret)) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client", "error_description": "wrong client secret"}
        grant = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier does not match"}
        now = int(time.time())
        person = dict(grant["person"])
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300, "nonce": grant["nonce"], **person}
        if self.groups_in_userinfo_only:
            claims.pop("groups", None)
        claims.update(self.id_token_claims)
        claims = {k: v for k, v in claims.items() if v is not None}
        id_token = jwt.encode(claims, self.signing_key or self.key, algorithm="RS256", headers={"kid": self.kid})
        access_token = secrets.token_urlsafe(16)
        self.access_tokens[access_token] = person
        return 200, {"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}

    def userinfo(self, authorization: str) -> tuple[int, dict]:
        person = self.access_tokens.get(authorization.removeprefix("Bearer "))
        if person is None:
            return 401, {"error": "invalid_token"}
        return 200, person


def _handler(provider: OidcProvider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _json(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif url.path == "/jwks":
                self._json(200, provider.jwks())
            elif url.path == "/authorize":
                status, headers, body = provider.authorize(query)
                self._json(status, body, headers)
            elif url.path == "/userinfo":
                self._json(*provider.userinfo(self.headers.get("Authorization", "")))
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if urlsplit(self.path).path == "/token":
                self._json(*provider.token(form, self.headers.get("Authorization", "")))
            else:
                self._json(404, {"error": "not_found"})

    return Handler
