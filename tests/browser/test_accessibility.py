"""Accessibility of the main pages in a real Chromium: axe-core finds no serious or critical violation, and the
keyboard reaches the login form and the main navigation in reading order, with a skip link first.

axe-core is vendored (static/vendor/axe.min.js, see package.json) and injected by the test. Its script is
inline content, which the production Content-Security-Policy (script-src 'self') rightly blocks; only this
test's browser context bypasses CSP (Playwright's bypass_csp), the policy itself is unchanged.
"""

from pathlib import Path

from django.conf import settings

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, SHOTS
from tests.browser.test_smoke import pytestmark  # noqa: F401  (the browser marks)
from tests.models_repo.conftest import checker, inspections  # noqa: F401  (fixtures)
from tests.pages import build_pages

AXE = Path(settings.BASE_DIR) / "static" / "vendor" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")


def _log_in(page, base_url, user):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "password")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def _axe_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    # All of axe's rules (WCAG 2.x A and AA and its best practices); only the impact decides what fails.
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [v for v in result if v.get("impact") in FAILING_IMPACTS]


def test_the_main_pages_have_no_serious_accessibility_violation(
    live_server,
    owner,
    member,
    admin,
    checker,  # noqa: F811 - the fixture
    inspections,  # noqa: F811 - the fixture
    production,
):
    from playwright.sync_api import sync_playwright

    pages = build_pages(owner=owner, member=member, checker=checker, dataset_version=inspections, department=production)
    people = {"member": member, "owner": owner, "admin": admin}
    found: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            contexts = {}
            for entry in pages:
                if entry.persona not in contexts:
                    context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="en-US", bypass_csp=True)
                    page = context.new_page()
                    page.set_default_timeout(15_000)
                    if entry.persona:
                        _log_in(page, live_server.url, people[entry.persona])
                    contexts[entry.persona] = page
                page = contexts[entry.persona]
                response = page.goto(f"{live_server.url}{entry.url}")
                assert response.status == 200, f"{entry.name}: {entry.url} answered {response.status}"
                page.wait_for_load_state("networkidle")
                for violation in _axe_violations(page):
                    targets = "; ".join(", ".join(node["target"]) for node in violation["nodes"][:5])
                    found.append(f"{entry.name} ({entry.url}): {violation['id']} [{violation['impact']}] at {targets}")
        finally:
            browser.close()
    assert not found, "axe-core found serious or critical violations:\n" + "\n".join(found)


def _focused(page) -> str:
    """What has the keyboard focus, as a person reading the page would name it."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const shown = el.cloneNode(true);
            shown.querySelectorAll('[aria-hidden=true]').forEach((hidden) => hidden.remove());
            const name = (el.getAttribute('name') || shown.textContent || '').trim();
            return `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}:${name}`;
        }"""
    )


def test_the_keyboard_goes_through_the_login_form_and_the_main_navigation_in_order(live_server, browser_page, member):
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    # The username field has the focus on arrival; Tab goes on in reading order: password, the button, the language.
    order = [_focused(page)]
    for _ in range(3):
        page.keyboard.press("Tab")
        order.append(_focused(page))
    assert order == [
        "input#id_username:username",
        "input#id_password:password",
        "button:Log in",
        "select#switch-language:language",
    ], order
    page.keyboard.press("Shift+Tab")
    # A focused control shows a visible focus ring (an outline or a box shadow).
    ring = page.evaluate("() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.boxShadow]; }")
    assert ring[0] != "none" or ring[1] != "none", ring
    # Signing in with the keyboard alone: type, Tab, type, Enter.
    page.focus("#id_username")
    page.keyboard.type(member.username)
    page.keyboard.press("Tab")
    page.keyboard.type("password")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")

    # On a signed-in page: skip link, brand, then the main navigation left to right.
    page.keyboard.press("Tab")
    assert _focused(page).startswith("a:Skip to the content")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main", "the skip link moves the focus to the content"
    page.goto(f"{live_server.url}/")
    names = []
    for _ in range(8):
        page.keyboard.press("Tab")
        names.append(_focused(page).split(":", 1)[1])
    assert names == ["Skip to the content", "Lepton", "Home", "Data", "Models", "Scheduling", "Dashboards", "Jobs"], names
    page.screenshot(path=str(SHOTS / "a11y-nav-focus.png"))
