"""The main browser journey in a real Chromium: log in, switch department, start a self-check,
watch its progress bar reach 100 % on the Jobs page without reloading.

Uses Debian's /usr/bin/chromium through Playwright (no browser download), the live server,
a real in-process Celery worker and the dispatcher. Screenshots go to $LEPTON_SCREENSHOTS
(default /tmp/lepton-screenshots) so a person can look at the pages.
"""

import os
import shutil

import pytest

from lepton.jobs.models import Job, JobStatus
from tests.browser.conftest import CHROMIUM, SHOTS
from tests.factories import MembershipFactory

# Playwright's sync API runs an event loop in this thread; the ORM calls below are still plain sync code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian chromium is not installed (make test installs it)"),
]


def test_member_switches_department_and_watches_a_selfcheck_finish(
    live_server, browser_page, member, production, quality, celery_worker, dispatcher
):
    from playwright.sync_api import expect

    MembershipFactory(user=member, department=quality, role="member")
    page = browser_page
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Log in: the home page asks for it first.
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    page.screenshot(path=str(SHOTS / "01-login.png"))
    page.fill("input[name=username]", member.username)
    page.fill("input[name=password]", "password")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Production")
    page.screenshot(path=str(SHOTS / "02-home-production.png"), full_page=True)

    # Switch department with the switcher in the top bar (it submits on change).
    page.select_option("#switch-department", "quality")
    expect(page.locator("h1")).to_have_text("Quality")
    assert page.locator("#switch-department").input_value() == "quality"

    # Start a self-check from the Jobs page; the form defaults to the current department.
    page.click("nav >> text=Jobs")
    expect(page.locator("h1")).to_have_text("Jobs")
    assert page.locator("#id_department").input_value() == "quality"
    # Choosing another kind swaps in that kind's parameter fields (htmx), keeping the department.
    page.select_option("#id_kind", "tests.sleep")
    expect(page.locator("#id_param_step_seconds")).to_be_visible()
    expect(page.locator("#id_param_probe_bytes")).to_have_count(0)
    page.select_option("#id_kind", "lepton.selfcheck")
    expect(page.locator("#id_param_probe_bytes")).to_be_visible()
    assert page.locator("#id_department").input_value() == "quality"
    page.fill("#id_param_steps", "5")
    page.fill("#id_param_pause_seconds", "0.3")
    page.click("#job-start-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("was queued")

    job = Job.objects.get()
    assert (job.kind, job.department, job.requested_by) == ("lepton.selfcheck", quality, member)
    row = page.locator(f"#job-{job.pk}")
    expect(row).to_be_visible()
    page.screenshot(path=str(SHOTS / "03-jobs-started.png"), full_page=True)

    # From here on the page must not reload: a marker on window would vanish if it did.
    page.evaluate("window.__leptonNoReload = true")
    progress = row.locator("[role=progressbar]")
    expect(progress).to_have_attribute("aria-valuenow", "100", timeout=30_000)
    expect(row.locator("[data-job-status-label]")).to_have_text("Succeeded")
    assert page.evaluate("window.__leptonNoReload === true"), "the Jobs page reloaded instead of updating in place"
    # Everything finished: the rows stop polling.
    expect(page.locator("#job-rows")).to_have_attribute("data-polling", "false")
    page.screenshot(path=str(SHOTS / "04-jobs-succeeded.png"), full_page=True)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.progress == 100

    # The job's own page shows the result and the log.
    row.locator("a").first.click()
    expect(page.locator("#job-live [data-job-status-label]")).to_have_text("Succeeded")
    expect(page.locator(".log")).to_contain_text("answered 5 rounds")
    page.screenshot(path=str(SHOTS / "05-job-detail.png"), full_page=True)

    # A token's secret is shown once, with a copy button.
    page.goto(f"{live_server.url}/profile/")
    page.fill("#id_name", "MES export")
    page.check("input[name=scopes][value=predict]")
    page.click("#token-create-form button[type=submit]")
    expect(page.locator("#token-secret")).to_contain_text("lep_")
    page.screenshot(path=str(SHOTS / "06-profile-new-token.png"), full_page=True)
    page.goto(f"{live_server.url}/profile/")
    expect(page.locator("#token-secret")).to_have_count(0)

    # The language switcher turns the shell into Simplified Chinese, on the same page.
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.select_option("#switch-language", "zh-hans")
    expect(page.locator("nav.nav")).to_contain_text("作业")
    expect(page.locator("#job-live [data-job-status-label]")).to_have_text("已成功")
    page.goto(f"{live_server.url}/")
    page.screenshot(path=str(SHOTS / "07-home-chinese.png"), full_page=True)
    assert errors == [], errors
