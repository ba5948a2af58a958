"""The complete Chinese interface: the main pages, their form errors and empty states rendered in zh-hans show
no English word outside a short list of names that stay as they are.

How a page is read: the text a person sees (text nodes, and the title, placeholder, aria-label and alt
attributes, button values), without scripts, styles, code and preformatted blocks, elements marked
translate="no" (data: table cells of a preview, profile values, audit values and object names as recorded),
the data the test made (USER_DATA, usernames, department names, the host name), and tokens that are
identifiers (with a digit, `_`, `.`, `/`, `@`, `:`, `=`, quotes or brackets). Whatever is left that is a word
of two or more Latin letters must be in ALLOWED.
"""

import json
import re
import socket
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.models_repo.conftest import checker, inspections  # noqa: F401  (fixtures)
from tests.pages import USER_DATA, build_pages

# Names that are the same in the Chinese interface: the product, formats, standards, units and abbreviations
# that Chinese manufacturing staff read as they are. Lower case; a word is looked up lower-cased.
ALLOWED = {
    "lepton",  # the product
    "english",  # the language switcher names each language in its own words
    "api", "csv", "tsv", "json", "parquet", "sql", "xlsx", "excel", "html", "http", "https", "url", "uuid",
    "jsonl", "ndjson", "pdf", "png", "jpeg", "zip", "gzip", "utf", "gbk", "ascii", "unicode",
    "oidc", "sso", "openapi", "bearer", "token",  # authentication words as shown in headers
    "psi", "ks", "auc", "roc", "rmse", "mae", "mape", "mse", "f1", "r2", "p50", "p95", "p99", "ms", "id",
    "plotly", "htmx", "duckdb", "postgresql", "redis", "celery", "s3", "cuda", "gpu", "cpu", "ram",
    "sklearn", "scikit", "xgboost", "lightgbm", "tensorflow", "keras", "onnx", "shap",
    "cp-sat", "fifo", "spt", "lpt", "mwkr", "mor", "lor", "taillard", "or-library",  # scheduling methods, formats
    "gantt", "kpi", "spc", "mes", "erp", "ai", "rest", "post", "markdown", "mysql", "bmp",
    "kb", "mb", "gb", "tb",  # units
    "mtbf", "mttr",  # mean time between failures / to repair, as maintenance staff write them
    "cnn", "gru", "lstm", "mlp", "n-gram", "scikit-learn",  # model families and libraries
    "numpy", "scipy", "joblib", "pandas", "pyarrow",  # the library versions a training run records
    # Column types as the engines name them (Arrow, DuckDB, the input schema of a model) and metric keys as the
    # API names them: identifiers a person types into SQL or reads in API answers.
    "double", "string", "bool", "boolean", "varchar", "number", "integer", "bigint", "float", "accuracy",
    "production", "staging",  # alias names, part of the prediction URL
}  # fmt: skip
SKIPPED_ELEMENTS = {"script", "style", "code", "pre", "textarea", "svg"}
ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
IDENTIFIER = re.compile(r"[0-9_./@:=#<>\\\"\[\]{}]")
WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")  # "scikit-learn" and "self-check" are one word each


class VisibleText(HTMLParser):
    """The words a person sees on the page, element by element."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skipping: list[str] = []
        self.texts: list[str] = []
        # Plotly figures travel as JSON in <script type="application/json" id=…> (json_script) and are drawn
        # where data-plotly-figure names that id: their titles, axis titles, legends and hover texts are read.
        self.scripts: dict[str, str] = {}
        self.figures: list[str] = []
        self._script_id: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("data-plotly-figure"):
            self.figures.append(attributes["data-plotly-figure"])
        if tag == "script" and attributes.get("type") == "application/json":
            self._script_id = attributes.get("id")
        if tag in SKIPPED_ELEMENTS or attributes.get("translate") == "no":
            if tag not in ("input", "img", "br", "meta", "link"):
                self.skipping.append(tag)
            return
        if self.skipping:
            return
        self.texts.extend(attributes[name] for name in ATTRIBUTES if attributes.get(name))
        if tag == "input" and attributes.get("type") in ("submit", "button") and attributes.get("value"):
            self.texts.append(attributes["value"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._script_id = None
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data):
        if self._script_id:
            self.scripts[self._script_id] = self.scripts.get(self._script_id, "") + data
        elif not self.skipping and data.strip():
            self.texts.append(data)

    def close(self):
        super().close()
        for figure_id in self.figures:
            if figure_id in self.scripts:
                self.texts.extend(figure_texts(json.loads(self.scripts[figure_id])))


FIGURE_TEXT_KEYS = {"title", "text", "name", "hovertemplate", "texttemplate"}


def figure_texts(node, key: str = "") -> list[str]:
    """The words a Plotly figure puts on screen (not its data arrays: x, y, z, customdata, ids)."""
    if isinstance(node, dict):
        return [text for k, value in node.items() for text in figure_texts(value, k)]
    if isinstance(node, list):
        return [text for value in node for text in figure_texts(value, key)] if key in FIGURE_TEXT_KEYS else []
    if isinstance(node, str) and key in FIGURE_TEXT_KEYS:
        return [node]
    return []


def english_words(html: str, user_data: tuple[str, ...]) -> dict[str, str]:
    """Each English word left on the page, with the text it was found in (to find its template or message)."""
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    # User data is taken out as whole words only: "no" (a value of the test data) must not eat "normalise".
    names = re.compile("|".join(rf"(?<![A-Za-z]){re.escape(n)}(?![A-Za-z])" for n in sorted(user_data, key=len, reverse=True)))
    found: dict[str, str] = {}
    for text in parser.texts:
        for token in names.sub(" ", text).split():
            if IDENTIFIER.search(token):
                continue
            for word in WORD.findall(token):
                if len(word) > 1 and word.lower() not in ALLOWED:
                    found.setdefault(word, " ".join(text.split())[:100])
    return found


@pytest.fixture
def zh_client(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


def _sign_in(client, user) -> None:
    """Sign `user` in (None: sign out); logging out drops the client's cookies, the language one with them."""
    client.logout()
    if user is not None:
        client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"


def _check(client, user, responses, user_data) -> list[str]:
    problems = []
    for name, response in responses:
        assert response.status_code in (200, 400), f"{name}: {response.status_code}"
        assert response["Content-Language"] == "zh-hans", name
        words = english_words(response.content.decode(), user_data)
        if words:
            problems.append(f"{name}: " + "; ".join(f"{word} (in «{text}»)" for word, text in sorted(words.items())))
    return problems


def test_every_main_page_is_fully_chinese(
    zh_client,
    owner,
    member,
    admin,
    checker,  # noqa: F811 - the fixture
    inspections,  # noqa: F811 - the fixture
    production,
    quality,
    outsider,
):
    pages = build_pages(owner=owner, member=member, checker=checker, dataset_version=inspections, department=production)
    people = {"member": member, "owner": owner, "admin": admin}
    people_names = (p.username for p in (owner, member, admin, checker, outsider))
    # The worker's host name is shown where a run says where it ran.
    user_data = (*USER_DATA, production.name, quality.name, *people_names, socket.gethostname())
    problems = []
    for page in pages:
        _sign_in(zh_client, people.get(page.persona))
        problems += _check(zh_client, None, [(page.name, zh_client.get(page.url))], user_data)

    # Form errors: each is a bad input a person can make, answered in Chinese.
    _sign_in(zh_client, None)
    errors = [("login, wrong password", zh_client.post("/accounts/login/", {"username": member.username, "password": "x"}))]
    _sign_in(zh_client, member)
    dataset = inspections.dataset
    errors += [
        ("upload without a file", zh_client.post(f"/data/{dataset.pk}/upload/", {})),
        ("new dataset without a name", zh_client.post("/data/", {"name": ""})),
        ("train form, empty", zh_client.post("/models/train/", {})),
        ("token without a name", zh_client.post("/profile/tokens/", {"name": ""})),
    ]
    problems += _check(zh_client, member, errors, user_data)

    # Empty states: Quality has nothing yet, and every list says what to do next.
    _sign_in(zh_client, outsider)
    empty = [
        (f"empty {url}", zh_client.get(url)) for url in ("/", "/data/", "/models/", "/scheduling/", "/jobs/", "/dashboards/")
    ]
    problems += _check(zh_client, outsider, empty, user_data)
    assert not problems, "English words in the zh-hans interface:\n" + "\n".join(problems)


def test_the_reader_finds_english_and_skips_code_and_user_data():
    html = (
        '<p title="Open it">数据集 <b>Inspections</b> 已发布</p><script>var english = 1;</script>'
        "<code>SELECT name</code><p>file_name.csv 2026-01-02 Parquet</p>"
        '<script id="f1" type="application/json">{"data": [{"x": ["Monday"], "name": "温度"}],'
        ' "layout": {"title": {"text": "Latency"}, "xaxis": {"title": {"text": "时间"}}}}</script>'
        '<div data-plotly-figure="f1"></div>'
    )
    assert set(english_words(html, ("Inspections",))) == {"Open", "it", "Latency"}


def test_a_malformed_shop_file_is_explained_in_chinese(zh_client, member):
    _sign_in(zh_client, member)
    response = zh_client.post("/scheduling/", {"name": "x", "file": SimpleUploadedFile("b.txt", b"2 2\n0 x 1 2\n")})
    assert response.status_code == 400
    assert not english_words(response.content.decode(), (member.username,))
