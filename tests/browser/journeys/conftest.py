"""Shared steps of the whole journeys: people, logging in (in a chosen language), named screenshots.

The browser (`browser_page`), the live server, the in-process Celery worker and the dispatcher
come from tests/browser/conftest.py and tests/conftest.py; this file only adds what several
journeys repeat. Screenshots are viewport-sized PNGs reduced to a 256-colour palette, so the
curated ones that `make screenshots` keeps in docs/screenshots/ stay small.
"""

import io
import json
import urllib.error
import urllib.request

import pytest

from tests.browser.conftest import SHOTS
from tests.factories import MembershipFactory, UserFactory

# Words of the Simplified Chinese interface a journey checks (from locale/zh_Hans, translated today).
ZH = {
    "login": "登录",
    "data": "数据",
    "models": "模型",
    "jobs": "作业",
    "ingesting": "正在导入",
    "published": "已发布",
    "versions": "版本",
    "fill_missing": "填充缺失值",
    "compare_versions": "比较版本",
    "request_production": "申请上线",
    "approve": "批准",
    "approved": "已批准",
    "succeeded": "已成功",
    "prediction": "预测结果",
    "scheduling": "排程",
}


@pytest.fixture(autouse=True)
def _rerelease_lost_messages_soon(settings):
    """Now and then (2 runs in 5 of the planner journey on this 2-core machine) a released job's
    message is never taken by the in-process worker, though its slots are free: the job stays
    released and unstarted. The dispatcher's reaper releases such a job again after
    LEPTON_RELEASE_TIMEOUT_SECONDS (600 s by default, for production); the journeys wait 10 s.
    A second message is harmless: the worker claims a job by compare-and-set."""
    settings.LEPTON_RELEASE_TIMEOUT_SECONDS = 10


@pytest.fixture
def engineer(quality):
    """A quality engineer: member of Quality."""
    user = UserFactory(username="qiao-engineer")
    MembershipFactory(user=user, department=quality, role="member")
    return user


@pytest.fixture
def lead(quality):
    """The quality lead: maintainer of Quality (registers models, approves promotions)."""
    user = UserFactory(username="lin-lead")
    MembershipFactory(user=user, department=quality, role="maintainer")
    return user


def login(page, base_url: str, user, next_url: str = "/", language: str = "") -> None:
    """Log in as `user` from a fresh session; with `language`, pick it first with the login page's switcher."""
    from playwright.sync_api import expect

    page.context.clear_cookies()
    page.goto(f"{base_url}/accounts/login/?next={next_url}")
    if language:
        page.select_option("#switch-language", language)  # submits on change and comes back translated
        expect(page.locator("html")).to_have_attribute("lang", language)
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "password")
    page.click("form:has(input[name=password]) button[type=submit]")
    expect(page.locator("input[name=password]")).to_have_count(0)


def shot(page, name: str) -> None:
    """Save what the viewport shows as SHOTS/<name>.png, as a palette PNG (a fifth of the bytes)."""
    from PIL import Image

    raw = page.screenshot(animations="disabled")
    image = Image.open(io.BytesIO(raw)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(SHOTS / f"{name}.png", optimize=True)


def api_post(url: str, payload: dict, secret: str) -> tuple[int, dict]:
    """POST JSON with a bearer token, as another service would; returns (status, body)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
