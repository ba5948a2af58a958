"""The Content-Security-Policy in a real Chromium: pages with scripts run with no violation
(the `browser_page` fixture fails a test on any console error), and an inline script is refused."""

import shutil

import pytest

from lepton import audit
from tests.browser.conftest import CHROMIUM, _console_problem

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian chromium is not installed (make test installs it)"),
]


def _login(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "password")
    page.click("button[type=submit]")


def test_api_docs_and_audit_pages_run_under_the_policy(live_server, browser_page, admin, production):
    from playwright.sync_api import expect

    audit.record(actor=admin, action="browser.check", obj=production, object_repr="csp check")
    page = browser_page
    _login(page, live_server, admin)
    response = page.goto(f"{live_server.url}/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # Swagger UI starts from its separate script (?script) and draws the operations.
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=30_000)
    page.goto(f"{live_server.url}/audit/")
    expect(page.locator("#audit-table")).to_contain_text("csp check")


def test_an_inline_script_is_refused(live_server, admin, production):
    """What the policy is for: an injected inline script does not run and is reported."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        messages = []
        page.on("console", lambda message: messages.append(message))
        page.goto(f"{live_server.url}/accounts/login/")
        page.evaluate(
            "() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
            " document.body.appendChild(s); }"
        )
        page.wait_for_timeout(200)
        ran = page.evaluate("() => window.ran === 1")
        browser.close()
    assert not ran
    problems = [p for p in map(_console_problem, messages) if p]
    assert any("Content Security Policy" in p for p in problems), problems
