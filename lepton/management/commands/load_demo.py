"""Load the demo organisation: five departments, a person per role in each, a platform admin.

Idempotent: what already exists is left as it is (a changed role or password is not
reset), so running it again creates nothing. Every department and membership is made
through lepton.services, so the audit log shows the demo being set up like any other
change. Later issues add their demo data (datasets, models, shop problems) here.

The password is the same for every demo person and is printed: demo installations only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from lepton import services
from lepton.models import Department, Membership, Role

DEMO_PASSWORD = "lepton-demo"
PLATFORM_ADMIN = "admin"
ROLES = [Role.ADMIN, Role.MAINTAINER, Role.MEMBER, Role.VIEWER]


@dataclass(frozen=True)
class DemoDepartment:
    slug: str
    short: str  # the username prefix: "prod" → prod-admin, prod-maintainer, …
    name: str
    description: str
    max_concurrent_jobs: int
    gpu_minutes_per_month: int
    # First and last names of the admin, maintainer, member and viewer, in that order.
    people: tuple[tuple[str, str], ...]


DEPARTMENTS = [
    DemoDepartment(
        "production",
        "prod",
        "Production",
        "Runs the three assembly lines and the machining cells; owns the production schedule and line sensor data.",
        8,
        1200,
        (("Petra", "Lindqvist"), ("Tomás", "Herrera"), ("Wei", "Zhang"), ("Ada", "Okafor")),
    ),
    DemoDepartment(
        "quality",
        "qa",
        "Quality",
        "Incoming inspection, in-line measurements and final test; owns defect records and SPC charts.",
        4,
        600,
        (("Mei", "Tanaka"), ("Jonas", "Weber"), ("Priya", "Raman"), ("Luca", "Bianchi")),
    ),
    DemoDepartment(
        "maintenance",
        "maint",
        "Maintenance",
        "Keeps the machines running: work orders, breakdown history and vibration data for predictive maintenance.",
        4,
        300,
        (("Erik", "Johansson"), ("Fatima", "Al-Sayed"), ("Diego", "Santos"), ("Hana", "Novak")),
    ),
    DemoDepartment(
        "supply-chain",
        "scm",
        "Supply Chain",
        "Purchasing, inventory and logistics; owns supplier lead times and demand forecasts.",
        4,
        300,
        (("Grace", "Mensah"), ("Oliver", "Brown"), ("Yuki", "Sato"), ("Nora", "Schmidt")),
    ),
    DemoDepartment(
        "customer-service",
        "cs",
        "Customer Service",
        "Handles orders, complaints and returns; owns ticket history and customer satisfaction surveys.",
        2,
        120,
        (("Sofia", "Rossi"), ("Kwame", "Asante"), ("Lena", "Fischer"), ("Ravi", "Patel")),
    ),
]

# One person who works for two departments: a planner who is a member of Production and of Supply Chain.
CROSS_DEPARTMENT_PERSON = ("planner", "Ingrid", "Berg", [("production", Role.MEMBER), ("supply-chain", Role.MEMBER)])


def demo_usernames() -> list[str]:
    """Every demo login, platform admin first, in the order they are printed."""
    names = [PLATFORM_ADMIN]
    for dept in DEPARTMENTS:
        names.extend(f"{dept.short}-{role}" for role in ROLES)
    names.append(CROSS_DEPARTMENT_PERSON[0])
    return names


def demo_logins_text() -> str:
    """The demo logins as printed by load_demo and by serve_all's banner."""
    lines = [f"Demo logins (password for all: {DEMO_PASSWORD}):", f"  {PLATFORM_ADMIN:<22} platform superuser (Django admin)"]
    for dept in DEPARTMENTS:
        names = ", ".join(f"{dept.short}-{role}" for role in ROLES)
        lines.append(f"  {dept.name:<22} {names}")
    username, _first, _last, memberships = CROSS_DEPARTMENT_PERSON
    lines.append(f"  {'Two departments':<22} {username} ({' and '.join(f'{role} of {slug}' for slug, role in memberships)})")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Create the demo departments and people (idempotent) and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when any department exists already (what `make run` uses, so the demo is loaded once).",
        )

    def handle(self, *args, if_empty=False, **options):
        if if_empty and Department.objects.exists():
            self.stdout.write("Departments exist already; demo not loaded (run `manage.py load_demo` to add it anyway).")
            return
        created: list[str] = []
        with transaction.atomic():
            superuser = self._platform_admin(created)
            for dept in DEPARTMENTS:
                people = [
                    self._person(f"{dept.short}-{role}", first, last, created)
                    for role, (first, last) in zip(ROLES, dept.people, strict=True)
                ]
                department = self._department(superuser, dept, admin=people[0], created=created)
                for role, user in zip(ROLES, people, strict=True):
                    self._membership(superuser, department, user, role, created)
            username, first, last, memberships = CROSS_DEPARTMENT_PERSON
            user = self._person(username, first, last, created)
            for slug, role in memberships:
                self._membership(superuser, Department.objects.get(slug=slug), user, role, created)

        # Each part adds its own demo data through `<app>/demo.py: load_demo(created=…)`, found by
        # convention so that the core imports none of the parts.
        for config in apps.get_app_configs():
            try:
                module = importlib.import_module(f"{config.name}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.demo":
                    raise
                continue
            module.load_demo(created=created)

        if created:
            self.stdout.write(f"Created {len(created)} demo objects:")
            for line in created:
                self.stdout.write(f"  {line}")
        else:
            self.stdout.write("The demo organisation is complete already; nothing created.")
        self.stdout.write(demo_logins_text())

    # --- pieces ----------------------------------------------------------------------------

    def _platform_admin(self, created: list[str]):
        User = get_user_model()
        user = User.objects.filter(username=PLATFORM_ADMIN).first()
        if user is None:
            user = User.objects.create_superuser(
                username=PLATFORM_ADMIN, email="admin@lepton.example", password=DEMO_PASSWORD, first_name="Platform"
            )
            created.append(f"platform superuser {PLATFORM_ADMIN}")
        elif not user.is_superuser:
            raise CommandError(
                f"A user named '{PLATFORM_ADMIN}' exists but is not a superuser; the demo needs it to create departments."
            )
        return user

    def _person(self, username: str, first: str, last: str, created: list[str]):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, first_name=first, last_name=last, email=f"{username}@lepton.example")
            user.set_password(DEMO_PASSWORD)
            user.save()
            created.append(f"user {username} ({first} {last})")
        return user

    def _department(self, superuser, dept: DemoDepartment, *, admin, created: list[str]) -> Department:
        department = Department.objects.filter(slug=dept.slug).first()
        if department is None:
            department = services.department_create(
                actor=superuser,
                slug=dept.slug,
                name=dept.name,
                description=dept.description,
                admin=admin,
                max_concurrent_jobs=dept.max_concurrent_jobs,
                gpu_minutes_per_month=dept.gpu_minutes_per_month,
            )
            created.append(f"department {dept.slug} ({dept.name}), admin {admin.username}")
        return department

    def _membership(self, superuser, department: Department, user, role: str, created: list[str]) -> None:
        if Membership.objects.filter(department=department, user=user).exists():
            return
        services.membership_add(actor=superuser, department=department, user=user, role=role)
        created.append(f"{user.username} joins {department.slug} as {role}")
