"""Browser fixtures: Debian's Chromium driven by Playwright (never a downloaded browser)."""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls in tests are still plain sync code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(os.environ.get("LEPTON_SCREENSHOTS", "/tmp/lepton-screenshots"))


# Console errors a page may log: a request the test makes fail on purpose (a form error's 400,
# a 404 it checks) shows as a failed resource load. Anything else, a Content-Security-Policy
# violation first of all, fails the test.
EXPECTED_CONSOLE_ERRORS = ("Failed to load resource: the server responded with a status of",)


def _console_problem(message) -> str | None:
    if message.type != "error" or message.text.startswith(EXPECTED_CONSOLE_ERRORS):
        return None
    return f"console error on {message.location.get('url', '?')}: {message.text}"


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="en-US")
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("console", lambda message: (problem := _console_problem(message)) and problems.append(problem))
        page.on("pageerror", lambda error: problems.append(f"uncaught error: {error}"))
        yield page
        context.close()
        browser.close()
    assert not problems, (
        "The browser reported errors (a CSP violation means an inline script or a foreign source):\n" + "\n".join(problems)
    )
