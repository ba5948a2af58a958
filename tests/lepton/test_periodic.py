"""The dispatcher's periodic pass: every task in settings exists, runs at its interval, fails alone."""

from django.conf import settings
from django.utils.module_loading import import_string

from lepton.jobs.dispatcher import run_periodic

CALLS = []


def record():
    CALLS.append("ran")
    return "ok"


def explode():
    raise RuntimeError("boom")


def test_every_periodic_task_in_settings_is_importable():
    assert settings.LEPTON_PERIODIC_TASKS, "the schedule is not empty"
    for path, every in settings.LEPTON_PERIODIC_TASKS:
        assert callable(import_string(path)) and every > 0


def test_tasks_run_at_their_interval_and_a_failure_does_not_stop_the_others(settings):
    settings.LEPTON_PERIODIC_TASKS = [("tests.lepton.test_periodic.explode", 10), ("tests.lepton.test_periodic.record", 10)]
    CALLS.clear()
    runs: dict = {}
    now = [0.0]
    outcome = run_periodic(runs, clock=lambda: now[0])
    assert outcome == {"tests.lepton.test_periodic.explode": "failed: boom", "tests.lepton.test_periodic.record": "ok"}
    now[0] = 5.0
    assert run_periodic(runs, clock=lambda: now[0]) == {}
    now[0] = 10.0
    assert set(run_periodic(runs, clock=lambda: now[0])) == {
        "tests.lepton.test_periodic.explode",
        "tests.lepton.test_periodic.record",
    }
    assert CALLS == ["ran", "ran"]
