"""Single sign-on (lepton/oidc.py) against a local OpenID Connect provider started by each test.

The browser is the Django test client; its redirects are followed by hand: to the provider
over real HTTP (tests/lepton/oidc_provider.py), and from the provider back to Lepton's callback.
"""

import html
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.checks import run_checks

from lepton import services
from lepton.models import AuditEvent, ExternalIdentity, Membership, MembershipPeriod, Role
from lepton.oidc import GroupMapError, GroupRule, parse_group_map
from tests.factories import DepartmentFactory, MembershipFactory, UserFactory
from tests.lepton.oidc_provider import OidcProvider, new_key

User = get_user_model()

GROUP_MAP = (
    "quality-engineers=quality:member,quality-leads=quality:maintainer,"
    "maint-leads=maintenance:maintainer,prod-leads=production:maintainer"
)


@pytest.fixture(scope="module")
def key():
    return new_key()


@pytest.fixture
def idp(key, settings, db):
    with OidcProvider(key) as provider:
        settings.LEPTON_OIDC_ISSUER = provider.issuer
        settings.LEPTON_OIDC_CLIENT_ID = provider.client_id
        settings.LEPTON_OIDC_CLIENT_SECRET = provider.client_secret
        settings.LEPTON_OIDC_NAME = "Acme SSO"
        settings.LEPTON_OIDC_GROUPS_CLAIM = "groups"
        settings.LEPTON_OIDC_GROUP_MAP = GROUP_MAP
        settings.LEPTON_OIDC_SYNC = True
        settings.LEPTON_OIDC_TIMEOUT_SECONDS = 5.0
        yield provider


@pytest.fixture
def departments(production, quality):
    maintenance = DepartmentFactory(slug="maintenance", name="Maintenance")
    return {"production": production, "quality": quality, "maintenance": maintenance}


def start(client, idp, next_url=None) -> str:
    """Open Lepton's SSO link, follow it to the provider; the callback URL the provider sends back."""
    response = client.get("/auth/oidc/login/", {"next": next_url} if next_url else {})
    assert response.status_code == 302, response.content
    location = response["Location"]
    assert location.startswith(f"{idp.issuer}/authorize?")
    at_provider = requests.get(location, allow_redirects=False, timeout=5)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == "/auth/oidc/callback/"
    return f"{back.path}?{back.query}"


def sign_in(client, idp, next_url=None):
    return client.get(start(client, idp, next_url))


def signed_in_user(client):
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def roles_of(user) -> dict[str, str]:
    return dict(Membership.objects.filter(user=user).values_list("department__slug", "role"))


def message_texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def failed_sign_in(client, response, fragment: str) -> None:
    """The callback ended on the login page with `fragment` in the message, nobody signed in."""
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    page = html.unescape(client.get("/accounts/login/").content.decode())
    assert fragment in page
    assert "obody was signed in" in page
    assert signed_in_user(client) is None


# --- the login page ------------------------------------------------------------------------


def test_login_page_offers_single_sign_on_and_local_login_still_works(client, idp, member):
    page = client.get("/accounts/login/?next=/jobs/").content.decode()
    assert "Sign in with Acme SSO" in page
    assert 'href="/auth/oidc/login/?next=/jobs/"' in page
    response = client.post("/accounts/login/", {"username": member.username, "password": "password"})
    assert response.status_code == 302 and signed_in_user(client) == member


def test_without_an_issuer_there_is_no_sso_link_and_the_routes_say_so(client, db, settings):
    settings.LEPTON_OIDC_ISSUER = ""
    assert "Sign in with" not in client.get("/accounts/login/").content.decode()
    response = client.get("/auth/oidc/login/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "Single sign-on is not set up here" in html.unescape(client.get("/accounts/login/").content.decode())


# --- signing in ----------------------------------------------------------------------------


def test_first_sign_in_creates_the_user_with_the_mapped_roles(client, idp, departments):
    idp.sign_in_as(
        "sub-alice",
        groups=["quality-engineers", "maint-leads", "cafeteria"],
        preferred_username="alice",
        email="alice@acme.example",
        given_name="Alice",
        family_name="Ng",
    )
    callback = start(client, idp)
    assert ExternalIdentity.objects.count() == 0
    response = client.get(callback)
    assert response.status_code == 302 and response["Location"] == "/"

    user = signed_in_user(client)
    assert (user.username, user.email, user.first_name, user.last_name) == ("alice", "alice@acme.example", "Alice", "Ng")
    assert not user.has_usable_password()
    assert roles_of(user) == {"quality": Role.MEMBER, "maintenance": Role.MAINTAINER}
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (idp.issuer, "sub-alice")
    assert identity.groups == ["quality-engineers", "maint-leads", "cafeteria"]
    assert identity.last_login is not None
    # Audited as the platform's doing, and in the access history.
    adds = AuditEvent.objects.filter(action="membership.add", changes__user="alice")
    assert {(e.department.slug, e.actor_label, e.changes["source"]) for e in adds} == {
        ("quality", "system", "sso"),
        ("maintenance", "system", "sso"),
    }
    assert AuditEvent.objects.filter(action="user.create", changes__subject="sub-alice").exists()
    assert set(MembershipPeriod.objects.filter(user=user, ended_at=None).values_list("department__slug", flat=True)) == {
        "quality",
        "maintenance",
    }
    # PKCE: the provider checked the verifier against the challenge; the code was sent with it.
    assert idp.token_requests[-1]["code_verifier"]
    assert client.get("/").status_code == 200


def test_sign_in_returns_to_the_page_asked_for_but_never_elsewhere(client, idp, departments):
    idp.sign_in_as("sub-bo", groups=["quality-engineers"])
    assert sign_in(client, idp, next_url="/jobs/")["Location"] == "/jobs/"
    client.logout()
    assert sign_in(client, idp, next_url="https://evil.example/")["Location"] == "/"


def test_users_are_found_by_subject_never_by_email_or_username(client, idp, departments):
    local = UserFactory(username="alice", email="alice@acme.example")
    idp.sign_in_as("sub-1", groups=[], preferred_username="alice", email="alice@acme.example")
    sign_in(client, idp)
    first = signed_in_user(client)
    assert first != local and first.username == "alice-2"
    assert not ExternalIdentity.objects.filter(user=local).exists()

    client.logout()
    idp.sign_in_as("sub-1", groups=[], preferred_username="alice.renamed", email="new@acme.example")
    sign_in(client, idp)
    again = signed_in_user(client)
    assert again == first and again.email == "new@acme.example" and again.username == "alice-2"
    assert User.objects.filter(username__startswith="alice").count() == 2


def test_sign_in_again_with_sync_follows_the_groups_for_provider_memberships_only(client, idp, departments):
    idp.sign_in_as("sub-carl", groups=["quality-engineers", "maint-leads", "prod-leads"], preferred_username="carl")
    sign_in(client, idp)
    carl = signed_in_user(client)
    assert roles_of(carl) == {"quality": "member", "maintenance": "maintainer", "production": "maintainer"}
    # Production's admin makes Carl a viewer there by hand: from now on that membership is Lepton's.
    production_admin = UserFactory(username="prod-admin")
    MembershipFactory(user=production_admin, department=departments["production"], role=Role.ADMIN)
    services.membership_change_role(
        actor=production_admin, membership=Membership.objects.get(user=carl, department__slug="production"), role="viewer"
    )

    client.logout()
    idp.sign_in_as("sub-carl", groups=["quality-leads"], preferred_username="carl")
    sign_in(client, idp)
    assert signed_in_user(client) == carl
    assert roles_of(carl) == {"quality": "maintainer", "production": "viewer"}
    assert AuditEvent.objects.filter(action="membership.remove", department=departments["maintenance"]).count() == 1
    assert AuditEvent.objects.filter(
        action="membership.change_role", department=departments["quality"], changes__role=["member", "maintainer"]
    ).exists()
    maintenance_period = MembershipPeriod.objects.get(user=carl, department=departments["maintenance"])
    assert maintenance_period.ended_at is not None

    client.logout()
    idp.sign_in_as("sub-carl", groups=[], preferred_username="carl")
    sign_in(client, idp)
    assert roles_of(carl) == {"production": "viewer"}


def test_sign_in_again_without_sync_only_adds_and_raises(client, idp, departments, settings):
    settings.LEPTON_OIDC_SYNC = False
    idp.sign_in_as("sub-dee", groups=["quality-engineers", "maint-leads"])
    sign_in(client, idp)
    dee = signed_in_user(client)
    assert roles_of(dee) == {"quality": "member", "maintenance": "maintainer"}

    for groups, expected in [
        ([], {"quality": "member", "maintenance": "maintainer"}),
        (["quality-leads"], {"quality": "maintainer", "maintenance": "maintainer"}),
        (["quality-engineers"], {"quality": "maintainer", "maintenance": "maintainer"}),
    ]:
        client.logout()
        idp.sign_in_as("sub-dee", groups=groups)
        sign_in(client, idp)
        assert roles_of(dee) == expected, groups
    assert not AuditEvent.objects.filter(action="membership.remove").exists()

    # Turned on later, sync removes what the provider granted and no group covers any more.
    settings.LEPTON_OIDC_SYNC = True
    client.logout()
    idp.sign_in_as("sub-dee", groups=["quality-engineers"])
    sign_in(client, idp)
    assert roles_of(dee) == {"quality": "member"}


def test_a_membership_made_in_lepton_is_never_changed_by_sign_in(client, idp, departments):
    dee = UserFactory(username="dee")
    ExternalIdentity.objects.create(issuer=idp.issuer, subject="sub-dee", user=dee)  # linked by an admin
    MembershipFactory(user=dee, department=departments["quality"], role=Role.VIEWER)
    idp.sign_in_as("sub-dee", groups=["quality-leads"])
    sign_in(client, idp)
    assert signed_in_user(client) == dee
    assert roles_of(dee) == {"quality": "viewer"}
    client.logout()
    idp.sign_in_as("sub-dee", groups=[])
    sign_in(client, idp)
    assert roles_of(dee) == {"quality": "viewer"}


def test_groups_may_come_from_userinfo_and_from_a_nested_claim(client, idp, departments, settings):
    idp.groups_in_userinfo_only = True
    idp.sign_in_as("sub-eve", groups=["maint-leads"])
    sign_in(client, idp)
    assert roles_of(signed_in_user(client)) == {"maintenance": "maintainer"}

    client.logout()
    idp.groups_in_userinfo_only = False
    settings.LEPTON_OIDC_GROUPS_CLAIM = "realm_access.roles"
    idp.sign_in_as("sub-fay", realm_access={"roles": ["quality-leads"]})
    sign_in(client, idp)
    assert roles_of(signed_in_user(client)) == {"quality": "maintainer"}


def test_the_last_admin_granted_by_the_provider_is_kept(client, idp, db, settings):
    lab = DepartmentFactory(slug="lab", name="Lab")
    settings.LEPTON_OIDC_GROUP_MAP = "lab-admins=lab:admin"
    idp.sign_in_as("sub-gus", groups=["lab-admins"])
    sign_in(client, idp)
    gus = signed_in_user(client)
    assert roles_of(gus) == {"lab": "admin"}
    client.logout()
    idp.sign_in_as("sub-gus", groups=[])
    sign_in(client, idp)
    assert roles_of(gus) == {"lab": "admin"}, "a department is never left without an admin"
    assert Membership.objects.filter(department=lab, role=Role.ADMIN).count() == 1


# --- bad input -----------------------------------------------------------------------------


def test_a_group_mapping_to_no_department_signs_in_with_no_access_and_says_whom_to_ask(client, idp, departments):
    idp.sign_in_as("sub-hal", groups=["cafeteria", "parking"], preferred_username="hal")
    response = sign_in(client, idp)
    hal = signed_in_user(client)
    assert hal is not None and hal.username == "hal"
    assert not Membership.objects.filter(user=hal).exists()
    assert not AuditEvent.objects.filter(action__startswith="membership.").exists()
    home = client.get(response["Location"]).content.decode()
    assert "you have no access to any department yet" in home
    assert "Ask an admin of your department to add you" in home
    assert "You are not in a department yet" in home


def test_the_no_access_notice_is_translated(client, idp, departments):
    client.cookies["django_language"] = "zh-hans"
    idp.sign_in_as("sub-ivy", groups=["cafeteria"], preferred_username="ivy")
    response = sign_in(client, idp)
    (notice,) = message_texts(response)
    assert "ivy" in notice and "Acme SSO" in notice
    assert "无权访问任何部门" in notice and "no access" not in notice
    client.logout()
    client.cookies["django_language"] = "zh-hans"
    assert "使用 Acme SSO 登录" in client.get("/accounts/login/").content.decode()


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("forged", "signature could not be verified"),
        ("audience", "issued for another application"),
        ("expired", "has expired"),
        ("nonce", "does not belong to this sign-in"),
        ("issuer", "issued by another provider"),
    ],
)
def test_an_untrustworthy_id_token_signs_nobody_in(client, idp, departments, tamper, reason):
    now = int(time.time())
    if tamper == "forged":
        idp.signing_key = new_key()
    else:
        idp.id_token_claims = {
            "audience": {"aud": "someone-else"},
            "expired": {"iat": now - 3600, "exp": now - 600},
            "nonce": {"nonce": "replayed-nonce"},
            "issuer": {"iss": "https://other-idp.example"},
        }[tamper]
    idp.sign_in_as("sub-mallory", groups=["quality-leads"], preferred_username="mallory")
    users = User.objects.count()
    response = sign_in(client, idp)
    failed_sign_in(client, response, reason)
    assert User.objects.count() == users
    assert not ExternalIdentity.objects.exists() and not Membership.objects.filter(user__username="mallory").exists()
    event = AuditEvent.objects.get(action="login.sso_failed")
    assert event.changes["issuer"] == idp.issuer and event.actor_label == "system"


def test_a_token_signed_with_the_public_key_as_hmac_secret_is_refused(idp, key):
    import base64
    import hashlib
    import hmac
    import json

    from cryptography.hazmat.primitives import serialization

    from lepton import oidc

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    # A token anyone could mint: HS256 keyed with the provider's published public key.
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    claims = {"iss": idp.issuer, "sub": "x", "aud": idp.client_id, "iat": now, "exp": now + 60, "nonce": "n"}
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': idp.kid}).encode())}.{b64(json.dumps(claims).encode())}"
    forged = f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"
    provider = oidc.provider()
    with pytest.raises(oidc.OidcError) as caught:
        oidc.verify_id_token(provider, oidc.discovery(provider), forged, nonce="n")
    assert caught.value.code == "bad_signature" and caught.value.audited
    # The same claims signed by the provider pass: the refusal is about the algorithm.
    genuine = jwt.encode(claims, key, algorithm="RS256", headers={"kid": idp.kid})
    assert oidc.verify_id_token(provider, oidc.discovery(provider), genuine, nonce="n")["sub"] == "x"


def test_a_callback_without_a_state_this_browser_started_is_refused(client, idp, departments):
    idp.sign_in_as("sub-jo", groups=["quality-engineers"])
    callback = start(client, idp)
    stranger = client.__class__()
    failed_sign_in(stranger, stranger.get(callback), "started in another browser")
    bogus = callback.replace("state=", "state=x")
    failed_sign_in(client, client.get(bogus), "started in another browser")
    assert not AuditEvent.objects.filter(action="login.sso_failed").exists()
    assert User.objects.filter(username="jo").count() == 0


def test_a_callback_cannot_be_used_twice(client, idp, departments):
    idp.sign_in_as("sub-kim", groups=["quality-engineers"], preferred_username="kim")
    callback = start(client, idp)
    client.get(callback)
    assert signed_in_user(client).username == "kim"
    client.logout()
    failed_sign_in(client, client.get(callback), "already used")


def test_the_provider_refusing_the_sign_in_is_told(client, idp, departments):
    idp.deny = True
    idp.sign_in_as("sub-lee", groups=["quality-engineers"])
    response = sign_in(client, idp)
    failed_sign_in(client, response, "Acme SSO did not sign you in (The user cancelled)")
    assert not ExternalIdentity.objects.exists()


def test_an_error_without_our_state_does_not_show_the_attackers_text(client, idp, departments):
    response = client.get("/auth/oidc/callback/", {"error": "x", "error_description": "Call +1 555 for help"})
    failed_sign_in(client, response, "started in another browser")
    assert "Call +1 555" not in client.get("/accounts/login/").content.decode()


def test_a_wrong_client_secret_is_refused_by_the_provider_and_told(client, idp, departments, settings):
    settings.LEPTON_OIDC_CLIENT_SECRET = "wrong"
    idp.sign_in_as("sub-max", groups=["quality-engineers"])
    response = sign_in(client, idp)
    failed_sign_in(client, response, "refused to complete the sign-in (wrong client secret)")
    assert not ExternalIdentity.objects.exists()


def test_a_provider_that_is_down_is_told_on_the_login_page(client, db, settings):
    with OidcProvider(new_key()) as gone:
        issuer = gone.issuer
    settings.LEPTON_OIDC_ISSUER = issuer
    settings.LEPTON_OIDC_CLIENT_ID = "lepton"
    settings.LEPTON_OIDC_NAME = "Acme SSO"
    response = client.get("/auth/oidc/login/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    page = client.get("/accounts/login/").content.decode()
    assert "Acme SSO cannot be reached right now" in page
    assert signed_in_user(client) is None


def test_a_disabled_account_cannot_sign_in_and_keeps_its_memberships(client, idp, departments):
    idp.sign_in_as("sub-ned", groups=["quality-engineers"], preferred_username="ned")
    sign_in(client, idp)
    ned = signed_in_user(client)
    client.logout()
    User.objects.filter(pk=ned.pk).update(is_active=False)
    idp.sign_in_as("sub-ned", groups=["maint-leads"], preferred_username="ned")
    failed_sign_in(client, sign_in(client, idp), "This account is disabled")
    assert roles_of(ned) == {"quality": "member"}


# --- configuration -------------------------------------------------------------------------


def test_the_group_map_reads_pairs_and_json():
    assert parse_group_map("quality-engineers=quality:member, maint-leads = maintenance:maintainer") == [
        GroupRule("quality-engineers", "quality", "member"),
        GroupRule("maint-leads", "maintenance", "maintainer"),
    ]
    assert parse_group_map('{"cn=qe,ou=groups": ["quality:member", "production:viewer"]}') == [
        GroupRule("cn=qe,ou=groups", "quality", "member"),
        GroupRule("cn=qe,ou=groups", "production", "viewer"),
    ]
    assert parse_group_map("") == []


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("qe=quality:boss", "unknown role 'boss'"),
        ("qe=quality", "expected department:role"),
        ("quality:member", "is not of the form group=department:role"),
        ('{"qe": 3}', "expected department:role"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_bad_group_map_is_a_system_check_error(settings, value, fragment):
    settings.LEPTON_OIDC_GROUP_MAP = value
    with pytest.raises(GroupMapError):
        parse_group_map(value)
    errors = [e for e in run_checks() if e.id == "lepton.E011"]
    assert len(errors) == 1 and fragment in errors[0].msg


def test_a_group_map_naming_an_unknown_department_is_a_system_check_error(settings, quality):
    settings.LEPTON_OIDC_GROUP_MAP = "qe=quality:member,ghosts=haunted:viewer"
    errors = [e for e in run_checks(databases=["default"]) if e.id == "lepton.E012"]
    assert len(errors) == 1 and "haunted" in errors[0].msg and "quality" not in errors[0].msg
    settings.LEPTON_OIDC_GROUP_MAP = "qe=quality:member"
    assert not [e for e in run_checks(databases=["default"]) if e.id == "lepton.E012"]


def test_an_issuer_without_a_client_id_is_a_system_check_error(settings):
    settings.LEPTON_OIDC_ISSUER = "https://sso.example"
    settings.LEPTON_OIDC_CLIENT_ID = ""
    assert [e.id for e in run_checks() if e.id == "lepton.E010"] == ["lepton.E010"]


def test_a_bad_group_map_refuses_sign_in_instead_of_guessing(client, idp, departments, settings):
    settings.LEPTON_OIDC_GROUP_MAP = "qe=quality:boss"
    response = client.get("/auth/oidc/login/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "not configured correctly" in client.get("/accounts/login/").content.decode()


def test_an_unknown_department_in_the_map_grants_nothing_for_it(client, idp, departments, settings):
    settings.LEPTON_OIDC_GROUP_MAP = "qe=quality:member,ghosts=haunted:viewer"
    idp.sign_in_as("sub-oli", groups=["qe", "ghosts"])
    sign_in(client, idp)
    assert roles_of(signed_in_user(client)) == {"quality": "member"}


def test_the_authorize_request_carries_state_nonce_and_pkce(client, idp):
    response = client.get("/auth/oidc/login/")
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == ["http://testserver/auth/oidc/callback/"]


# --- linking an existing account in the admin ----------------------------------------------


def test_a_superuser_links_an_existing_account_in_the_admin_and_it_signs_in(client, idp, departments, staff):
    from django.urls import reverse

    local = UserFactory(username="olga", email="olga@acme.example")
    client.force_login(staff)
    add = reverse("admin:lepton_externalidentity_add")
    response = client.post(add, {"issuer": idp.issuer, "subject": "sub-olga", "user": local.pk})
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="sso.link")
    assert event.actor == staff and event.changes["subject"] == "sub-olga"

    # The same identity a second time is refused with the reason, and nothing is added.
    other = UserFactory(username="olaf")
    response = client.post(add, {"issuer": idp.issuer, "subject": "sub-olga", "user": other.pk})
    assert "External identity with this Issuer and Subject already exists" in response.content.decode()
    assert ExternalIdentity.objects.count() == 1

    client.logout()
    idp.sign_in_as("sub-olga", groups=["quality-engineers"], preferred_username="someone-else")
    sign_in(client, idp)
    assert signed_in_user(client) == local
    assert roles_of(local) == {"quality": "member"}


def test_unlinking_in_the_admin_is_audited_and_keeps_the_account(client, idp, departments, staff):
    from django.urls import reverse

    idp.sign_in_as("sub-pia", groups=["quality-engineers"], preferred_username="pia")
    sign_in(client, idp)
    pia = signed_in_user(client)
    identity = ExternalIdentity.objects.get(user=pia)
    client.force_login(staff)
    assert client.post(reverse("admin:lepton_externalidentity_delete", args=[identity.pk]), {"post": "yes"}).status_code == 302
    assert not ExternalIdentity.objects.exists() and User.objects.filter(pk=pia.pk).exists()
    assert AuditEvent.objects.filter(action="sso.unlink", changes__user="pia").exists()


def test_only_superusers_link_identities_and_each_identity_once(db, member, staff):
    from lepton.errors import Forbidden, Invalid

    with pytest.raises(Forbidden):
        services.external_identity_link(actor=member, user=member, issuer="https://sso.example", subject="x")
    assert not ExternalIdentity.objects.exists()
    services.external_identity_link(actor=staff, user=member, issuer="https://sso.example", subject="x")
    with pytest.raises(Invalid, match=f"already belongs to {member.username}"):
        services.external_identity_link(actor=staff, user=staff, issuer="https://sso.example", subject="x")
    with pytest.raises(Invalid) as caught:
        services.external_identity_link(actor=staff, user=staff, issuer="https://sso.example", subject=" ")
    assert "subject" in caught.value.fields
    assert list(ExternalIdentity.objects.values_list("user", flat=True)) == [member.pk]
