"""The audit hash chain: sealing in order (also under concurrent writers), verify_audit naming
the first broken link after a row is changed or removed with SQL."""

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction

from lepton import audit, services
from lepton.models import AuditEvent, Role
from tests.factories import UserFactory


def _events(n, actor, department):
    for i in range(n):
        audit.record(actor=actor, action="test.touch", obj=department, changes={"i": i, "note": "é", "f": 0.1})


def test_events_are_sealed_in_order_and_verify_ok(admin, production, capsys):
    _events(3, admin, production)
    assert AuditEvent.objects.filter(seq__isnull=True).count() == 3
    assert audit.seal_pending() == 3
    chain = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in chain] == [1, 2, 3]
    assert chain[0].prev_hash == ""
    assert chain[1].prev_hash == chain[0].hash and chain[2].prev_hash == chain[1].hash
    assert all(len(e.hash) == 64 for e in chain)
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert out.startswith("OK: 3 audit events verified")
    assert chain[2].hash in out


def test_record_seals_on_commit(admin, production, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            services.membership_add(actor=admin, department=production, user=UserFactory(username="new"), role=Role.VIEWER)
    event = AuditEvent.objects.get(action__startswith="membership")
    assert event.seq is not None and event.hash == audit.event_hash(event)


def test_sealing_is_idempotent(admin, production):
    _events(2, admin, production)
    audit.seal_pending()
    before = list(AuditEvent.objects.order_by("seq").values_list("seq", "hash"))
    assert audit.seal_pending() == 0
    _events(1, admin, production)
    assert audit.seal_pending() == 1
    after = list(AuditEvent.objects.order_by("seq").values_list("seq", "hash"))
    assert after[:2] == before and after[2][0] == 3


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("UPDATE lepton_auditevent SET actor_label = 'mallory' WHERE id = %s", "content differs"),
        ("UPDATE lepton_auditevent SET changes = '{\"i\": 99}' WHERE id = %s", "content differs"),
        ("UPDATE lepton_auditevent SET at = at - interval '1 day' WHERE id = %s", "content differs"),
        ("UPDATE lepton_auditevent SET department_id = NULL WHERE id = %s", "content differs"),
    ],
)
def test_verify_audit_names_a_changed_event(admin, production, sql, reason):
    _events(5, admin, production)
    audit.seal_pending()
    target = AuditEvent.objects.get(seq=3)
    with connection.cursor() as cursor:
        cursor.execute(sql, [target.pk])
    with pytest.raises(CommandError) as error:
        call_command("verify_audit")
    message = str(error.value)
    assert f"broken at event {target.pk} (position 3)" in message
    assert reason in message
    assert "2 events before it are intact" in message


def test_verify_audit_names_the_event_after_a_deleted_one(admin, production):
    _events(4, admin, production)
    audit.seal_pending()
    gone, after = AuditEvent.objects.get(seq=2), AuditEvent.objects.get(seq=3)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM lepton_auditevent WHERE id = %s", [gone.pk])
    with pytest.raises(CommandError, match=rf"broken at event {after.pk} \(position 3\): position 3 follows 1"):
        call_command("verify_audit")


def test_verify_audit_finds_a_rehashed_row_by_its_successor(admin, production):
    """Someone who changes a row and recomputes its hash still breaks the next link."""
    _events(3, admin, production)
    audit.seal_pending()
    target = AuditEvent.objects.get(seq=2)
    target.actor_label = "mallory"
    forged = audit.event_hash(target)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE lepton_auditevent SET actor_label = 'mallory', hash = %s WHERE id = %s", [forged, target.pk])
    following = AuditEvent.objects.get(seq=3)
    with pytest.raises(CommandError, match=rf"broken at event {following.pk} \(position 3\): prev_hash"):
        call_command("verify_audit")


def test_verify_audit_without_sealing_counts_pending(admin, production, capsys):
    _events(2, admin, production)
    audit.seal_pending()
    _events(1, admin, production)
    call_command("verify_audit", "--no-seal")
    assert "OK: 2 audit events verified, 1 waiting to be sealed" in capsys.readouterr().out


def test_the_chain_survives_deleting_the_actor(admin, production):
    _events(2, admin, production)
    audit.seal_pending()
    admin.delete()
    assert audit.verify().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_give_one_gapless_chain(production, admin):
    """Four threads record and seal at once: one chain 1..n, every link valid."""
    errors = []

    def writer():
        try:
            for _ in range(10):
                with transaction.atomic():
                    _events(2, admin, production)
                audit.seal_pending()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    audit.seal_pending()
    assert sorted(AuditEvent.objects.values_list("seq", flat=True)) == list(range(1, 81))
    report = audit.verify()
    assert report.ok and report.checked == 80
