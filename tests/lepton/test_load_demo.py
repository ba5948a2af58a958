"""`manage.py load_demo`: the demo organisation, made through the services, loaded once."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from lepton.management.commands.load_demo import DEMO_PASSWORD, DEPARTMENTS, demo_usernames
from lepton.models import AuditEvent, Department, Membership

User = get_user_model()


def _load(*args) -> str:
    out = StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


def _counts() -> tuple[int, int, int, int]:
    return User.objects.count(), Department.objects.count(), Membership.objects.count(), AuditEvent.objects.count()


@pytest.mark.django_db
def test_demo_creates_five_departments_with_a_person_per_role():
    _load()
    slugs = set(Department.objects.values_list("slug", flat=True))
    assert slugs == {"production", "quality", "maintenance", "supply-chain", "customer-service"}
    for dept in DEPARTMENTS:
        roles = dict(Membership.objects.filter(department__slug=dept.slug).values_list("user__username", "role"))
        for role in ("admin", "maintainer", "member", "viewer"):
            assert roles[f"{dept.short}-{role}"] == role


@pytest.mark.django_db
def test_demo_has_a_platform_superuser_and_a_person_in_two_departments():
    _load()
    assert User.objects.get(username="admin").is_superuser
    planner = Membership.objects.filter(user__username="planner")
    assert set(planner.values_list("department__slug", flat=True)) == {"production", "supply-chain"}


@pytest.mark.django_db
def test_demo_logins_work_with_the_printed_password():
    output = _load()
    assert DEMO_PASSWORD in output
    for username in demo_usernames():
        assert username in output
        assert authenticate(username=username, password=DEMO_PASSWORD) is not None, username


@pytest.mark.django_db
def test_demo_is_made_through_the_services_so_the_audit_log_shows_it():
    _load()
    assert AuditEvent.objects.filter(action="department.create", actor__username="admin").count() == 5
    # 4 roles per department, the first admin added by department_create; the planner twice.
    assert AuditEvent.objects.filter(action="membership.add").count() == 5 * 3 + 2


@pytest.mark.django_db
def test_running_the_demo_twice_creates_nothing_the_second_time():
    _load()
    before = _counts()
    second = _load()
    assert _counts() == before
    assert "nothing created" in second


@pytest.mark.django_db
def test_demo_keeps_changes_made_since_it_was_loaded():
    _load()
    member = Membership.objects.get(user__username="qa-member")
    member.role = "viewer"
    member.save()
    _load()
    member.refresh_from_db()
    assert member.role == "viewer"


@pytest.mark.django_db
def test_if_empty_loads_nothing_when_a_department_exists(production):
    output = _load("--if-empty")
    assert "not loaded" in output
    assert list(Department.objects.values_list("slug", flat=True)) == ["production"]
    assert not User.objects.filter(username="admin").exists()


@pytest.mark.django_db
def test_if_empty_loads_the_demo_on_an_empty_database():
    _load("--if-empty")
    assert Department.objects.count() == 5


@pytest.mark.django_db
def test_demo_refuses_to_use_an_admin_account_that_is_not_a_superuser():
    User.objects.create_user("admin", password="x")
    with pytest.raises(CommandError, match="not a superuser"):
        _load()
    assert Department.objects.count() == 0
