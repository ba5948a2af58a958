"""Access-request journey in a real Chromium: a person in Quality finds Production's discoverable
dataset in the catalog, asks for access with a purpose; a maintainer of Production approves it
in the /access/ inbox; the Quality person can then open the dataset and read its rows. With
sensitive columns (issue 9's journey 4): the same path reads and trains on them masked."""

from lepton.collab.models import AccessRequest
from tests.browser.conftest import SHOTS
from tests.browser.test_smoke import pytestmark  # noqa: F401  (the browser marks)
from tests.lepton.collab_helpers import published_dataset


def _login(page, base, user, next_url):
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "password")
    page.click("button[type=submit]")


def test_request_approve_then_preview(live_server, browser_page, owner, member, outsider, production):
    from playwright.sync_api import expect

    dataset = published_dataset(member, production, name="Line yields", discoverable=True).dataset
    page = browser_page

    _login(page, live_server.url, outsider, "/data/")
    expect(page.locator("h1")).to_have_text("Data")
    row = page.locator("tr", has_text="Line yields")
    expect(row).to_contain_text("Production")
    row.locator("text=Request access").click()
    expect(page.locator("h1")).to_have_text("Line yields")
    page.select_option("#id_level", "view")
    page.fill("#id_purpose", "Compare our rejects with line yields")
    page.click("#access-request-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Your request was sent")
    expect(page.locator("#outgoing")).to_contain_text("Pending")
    request = AccessRequest.objects.get()
    assert request.requested_by == outsider and request.status == "pending"

    _login(page, live_server.url, owner, "/notices/")
    expect(page.locator("#notice-list")).to_contain_text("Compare our rejects with line yields")
    expect(page.locator("#unread-notices")).to_have_text("1")
    page.click('main a[href="/access/"]')
    item = page.locator(f"#request-{request.pk}")
    expect(item).to_contain_text("olga-outsider (Quality) asks for View")
    page.screenshot(path=str(SHOTS / "40-access-inbox.png"), full_page=True)
    item.locator("button:has-text('Approve')").click()
    expect(page.locator(".messages")).to_contain_text("Approved")
    expect(page.locator(f"#request-{request.pk}")).to_contain_text("Approved")

    _login(page, live_server.url, outsider, f"/data/{dataset.pk}/")
    expect(page.locator("h1")).to_have_text("Line yields")
    expect(page.locator("#preview-title")).to_contain_text("Rows of v1")
    expect(page.locator("table.small").first).to_contain_text("M2")
    page.screenshot(path=str(SHOTS / "41-shared-preview.png"), full_page=True)


def _staff_rows(n: int = 40) -> bytes:
    """Badges with e-mails (personal), salaries (confidential), hours and the shift to predict."""
    people = ["ann", "bob", "cho", "dan", "eve"]
    lines = ["badge,email,salary,hours,shift"]
    for i in range(n):
        lines.append(f"B{i},{people[i % 5]}@corp.example,{4800 + 100 * (i % 7)},{30 + i % 11},{'early' if i % 3 else 'late'}")
    return ("\n".join(lines) + "\n").encode()


def test_request_approve_then_use_with_masked_columns(
    live_server, browser_page, settings, owner, member, outsider, production, celery_worker, dispatcher
):
    """Issue 9's journey 4. Production's maintainer classifies two columns in the browser; Quality
    asks for `use`, gets it, and reads the rows in the preview and the SQL console with the e-mail
    hashed and the salary absent, while the owner reads them in clear; Quality then trains on the
    shared data: the salary is not a column it can name, the e-mail reaches the model hashed, and
    nothing is unmasked for it."""
    from playwright.sync_api import expect

    from datalake import services as datalake_services
    from lepton.models import AuditEvent
    from models_repo.models import TrainingRun
    from tests.conftest import wait_for_job
    from tests.datalake.test_sensitive import KEY, mask, publish

    DATA = _staff_rows()
    CLEAR = {f"{p}@corp.example" for p in ("ann", "bob", "cho", "dan", "eve")} | {"4800", "5100", "5400"}

    settings.LEPTON_DATA_KEY = KEY
    settings.LEPTON_DATA_KEY_PREVIOUS = []
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Staff", discoverable=True)
    publish(member, dataset, data=DATA)
    page = browser_page
    base = live_server.url

    _login(page, base, owner, f"/data/{dataset.pk}/columns/")
    expect(page.locator("h1")).to_have_text("Sensitive columns")
    page.select_option("#id_level-email", "personal")
    page.select_option("#id_mode-email", "hash")
    page.select_option("#id_level-salary", "confidential")
    page.select_option("#id_mode-salary", "hide")
    page.click("main form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("The classification of the columns is saved.")
    dataset.refresh_from_db()
    assert dataset.sensitive_columns == {
        "email": {"level": "personal", "mode": "hash"},
        "salary": {"level": "confidential", "mode": "hide"},
    }
    # The maintainer of the owning department reads in clear (an audited unmask).
    expect(page.locator("#preview-title")).to_contain_text("Rows of v1")
    expect(page.locator("main")).to_contain_text("ann@corp.example")

    _login(page, base, outsider, "/data/")
    page.locator("tr", has_text="Staff").locator("text=Request access").click()
    page.select_option("#id_level", "use")
    page.fill("#id_purpose", "Join staff badges with inspection records")
    page.click("#access-request-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Your request was sent")
    request = AccessRequest.objects.get()

    _login(page, base, owner, "/access/")
    page.locator(f"#request-{request.pk}").locator("button:has-text('Approve')").click()
    expect(page.locator(f"#request-{request.pk}")).to_contain_text("Approved")

    _login(page, base, outsider, f"/data/{dataset.pk}/")
    expect(page.locator("#preview-title")).to_contain_text("Rows of v1")
    preview = page.locator("main")
    expect(preview).to_contain_text(mask("ann@corp.example"))
    expect(preview).to_contain_text("B2")
    text = preview.inner_text()
    assert not {value for value in CLEAR if value in text}, "a sensitive value shows in clear"
    page.screenshot(path=str(SHOTS / "42-shared-preview-masked.png"), full_page=True)

    page.goto(f"{base}/data/sql/")
    page.fill("#sql", "SELECT badge, email FROM production.staff ORDER BY badge")
    page.click("#sql-form button:has-text('Run')")
    result = page.locator("main")
    expect(result).to_contain_text(mask("bob@corp.example"))
    assert "bob@corp.example" not in result.inner_text()
    page.screenshot(path=str(SHOTS / "43-shared-sql-masked.png"), full_page=True)
    page.fill("#sql", "SELECT salary FROM production.staff")
    page.click("#sql-form button:has-text('Run')")
    expect(page.locator("main .error, main [role=alert]").first).to_be_visible()
    assert "5100" not in page.locator("main").inner_text()
    unmasked_before = AuditEvent.objects.filter(action="dataset.unmask").count()

    # Training on the shared data: the hidden salary cannot be named; the hashed e-mail can.
    page.goto(f"{base}/models/train/")
    page.select_option("#id_dataset_version", label="production.staff v1")
    page.select_option("#id_task", "classification")
    page.fill("#id_target", "shift")
    page.fill("#id_features", "salary, hours")
    page.select_option("#id_algorithm", "random_forest")
    page.click("#train-form button[type=submit]")
    expect(page.locator("#train-form")).to_contain_text("salary")
    assert not TrainingRun.objects.exists()
    page.fill("#id_features", "email, hours")
    page.click("#train-form button[type=submit]")
    expect(page.locator(".messages, .message").first).to_contain_text("The run is queued")
    run = TrainingRun.objects.get()
    assert run.department == outsider.memberships.get().department
    assert wait_for_job(run.job, timeout=120).status == "succeeded"
    expect(page.locator("[data-run-status='succeeded']")).to_be_visible(timeout=30_000)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error_message
    page.screenshot(path=str(SHOTS / "44-shared-training.png"), full_page=True)
    assert not {value for value in CLEAR if value in page.locator("main").inner_text()}
    assert AuditEvent.objects.filter(action="dataset.unmask").count() == unmasked_before
