"""The policy matrix: each role × action × own / shared / expired share / other department.

The generic `OwnedRule` (what datasets, models and problems will use) is exercised on
real Job rows, since a Job is an owned object; `policy.can` and `policy.visible_to`
must always agree.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from lepton import policy
from lepton.jobs.models import Job
from lepton.models import AuditEvent, Department, Membership, Share
from tests.factories import DepartmentFactory, MembershipFactory, UserFactory

ROLES = ["viewer", "member", "maintainer", "admin"]
ACTIONS = ["view", "use", "change", "delete", "share"]

OWN = {
    "viewer": {"view"},
    "member": {"view", "use", "change"},
    "maintainer": {"view", "use", "change", "delete", "share"},
    "admin": {"view", "use", "change", "delete", "share"},
}
SHARED_VIEW = {role: {"view"} for role in ROLES}
SHARED_USE = {"viewer": {"view"}, "member": {"view", "use"}, "maintainer": {"view", "use"}, "admin": {"view", "use"}}
NOTHING = {role: set() for role in ROLES}


def _rule_allows(rule, user, action, obj):
    by_can = rule.can(user, action, obj)
    by_query = Job.objects.filter(rule.q(user, action, Job)).filter(pk=obj.pk).exists()
    assert by_can == by_query, f"can() and q() disagree for {action}"
    return by_can


@pytest.fixture
def owned_job(production):
    return Job.objects.create(kind="tests.noop", department=production)


def _share(job, department, level, expires_at=None):
    return Share.objects.create(
        content_type=ContentType.objects.get_for_model(Job),
        object_id=str(job.pk),
        department=department,
        level=level,
        expires_at=expires_at,
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "situation, expected",
    [("own", OWN), ("shared_view", SHARED_VIEW), ("shared_use", SHARED_USE), ("expired_share", NOTHING), ("other", NOTHING)],
)
def test_owned_object_policy_matrix(role, situation, expected, owned_job, production, quality):
    rule = policy.OwnedRule()
    user = UserFactory(username=f"u-{role}-{situation}")
    MembershipFactory(user=user, department=production if situation == "own" else quality, role=role)
    if situation == "shared_view":
        _share(owned_job, quality, "view")
    elif situation == "shared_use":
        _share(owned_job, quality, "use", expires_at=timezone.now() + timedelta(days=1))
    elif situation == "expired_share":
        _share(owned_job, quality, "use", expires_at=timezone.now() - timedelta(seconds=1))
    allowed = {action for action in ACTIONS if _rule_allows(rule, user, action, owned_job)}
    assert allowed == expected[role]


def test_share_to_a_third_department_grants_nothing_to_the_second(owned_job, quality, outsider):
    maintenance = DepartmentFactory(slug="maintenance")
    _share(owned_job, maintenance, "use")
    assert not policy.OwnedRule().can(outsider, "view", owned_job)


@pytest.mark.parametrize(
    "role, expected",
    [
        ("viewer", {"view"}),
        ("member", {"view", "submit"}),
        ("maintainer", {"view", "submit", "manage"}),
        ("admin", {"view", "submit", "manage", "administer"}),
    ],
)
def test_department_actions_follow_the_role(role, expected, production):
    user = UserFactory(username=f"d-{role}")
    MembershipFactory(user=user, department=production, role=role)
    allowed = {a for a in ("view", "submit", "manage", "administer") if policy.can(user, a, production)}
    assert allowed == expected
    visible = {
        a
        for a in ("view", "submit", "manage", "administer")
        if policy.visible_to(user, Department, a).filter(pk=production.pk).exists()
    }
    assert visible == expected


def test_outsider_sees_no_department_but_their_own(production, quality, outsider):
    assert list(policy.visible_to(outsider, Department)) == [quality]
    assert not policy.can(outsider, "view", production)


def test_anonymous_and_inactive_users_may_do_nothing(owned_job, member):
    anonymous = AnonymousUser()
    assert not policy.can(anonymous, "view", owned_job)
    assert policy.visible_to(anonymous, Job).count() == 0
    member.is_active = False
    member.save()
    assert not policy.can(member, "view", owned_job)
    assert policy.visible_to(member, Job).count() == 0


def test_staff_may_view_everything_but_not_change(owned_job, production):
    watcher = UserFactory(username="watcher", is_staff=True)
    assert policy.can(watcher, "view", owned_job)
    assert not policy.can(watcher, "cancel", owned_job)
    assert policy.visible_to(watcher, Department).count() == Department.objects.count()


def test_superuser_may_do_everything(owned_job, staff):
    assert policy.can(staff, "cancel", owned_job)
    assert policy.can(staff, "administer", owned_job.department)


def test_job_cancel_allowed_for_requester_member_and_maintainers_only(production, member, viewer, owner, outsider):
    other_member = UserFactory(username="other-member")
    MembershipFactory(user=other_member, department=production, role="member")
    job = Job.objects.create(kind="tests.noop", department=production, requested_by=member)
    assert policy.can(member, "cancel", job)
    assert policy.can(owner, "cancel", job)
    assert not policy.can(other_member, "cancel", job)
    assert not policy.can(viewer, "cancel", job)
    assert not policy.can(outsider, "cancel", job)
    assert set(policy.visible_to(member, Job, "cancel")) == {job}
    assert set(policy.visible_to(other_member, Job, "cancel")) == set()


def test_requester_demoted_to_viewer_can_no_longer_cancel(production, member):
    job = Job.objects.create(kind="tests.noop", department=production, requested_by=member)
    Membership.objects.filter(user=member).update(role="viewer")
    policy.forget_roles(member)
    assert not policy.can(member, "cancel", job)


def test_platform_jobs_are_visible_to_staff_only(member, staff):
    job = Job.objects.create(kind="lepton.selfcheck", department=None)
    assert not policy.can(member, "view", job)
    assert policy.can(staff, "view", job)


def test_audit_events_visible_to_own_department_only(production, quality, member, outsider):
    event = AuditEvent.objects.create(actor_label="x", action="test", department=production)
    assert policy.can(member, "view", event)
    assert not policy.can(outsider, "view", event)
    assert list(policy.visible_to(outsider, AuditEvent)) == []


def test_tokens_are_visible_to_their_owner_only(member, outsider):
    from lepton.services import token_create

    token, _ = token_create(actor=member, name="ci", scopes=["read"])
    assert policy.can(member, "view", token)
    assert not policy.can(outsider, "view", token)


def test_unknown_action_is_a_programming_error(owned_job, member):
    with pytest.raises(ValueError, match="Unknown action"):
        policy.can(member, "frobnicate", owned_job)


def test_get_visible_or_404_hides_other_departments(production, quality, outsider):
    from django.http import Http404

    with pytest.raises(Http404):
        policy.get_visible_or_404(outsider, Department, slug="production")
    assert policy.get_visible_or_404(outsider, Department, slug="quality") == quality
