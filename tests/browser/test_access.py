"""Access-request journey in a real Chromium: a person in Quality finds Production's discoverable
dataset in the catalog, asks for access with a purpose; a maintainer of Production approves it
in the /access/ inbox; the Quality person can then open the dataset and read its rows."""

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
