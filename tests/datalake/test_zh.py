"""What the data-lake engine writes for a person reaches a zh-hans reader in Chinese.

The engine (no Django) words its refusals, warnings and check messages as English Phrases
(phrases: a marked template and its parameters); the services put them in the reader's language
where they are stored or returned (lepton.i18n.translated, datalake.services.words). These tests
take real refusals from the real engine, read them in Chinese, and check that every message the
engine writes is marked, so that a new f-string fails here.
"""

import ast
import io
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.template import Context, Template
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext
from rest_framework.test import APIClient

from datalake import services
from datalake.engine.checks import CheckSpecError, run_checks, validate_check
from datalake.engine.dbimport import check_select, parse_database_url
from datalake.engine.errors import IngestError
from datalake.engine.images import ImageOptions, ingest_images
from datalake.engine.ingest import IngestOptions, ingest
from datalake.engine.preview import PreviewError, preview
from datalake.engine.recipes import RecipeError, validate_recipe
from datalake.engine.sql import QueryError, check_read_only
from lepton.errors import Invalid
from lepton.i18n import translated
from lepton.services import profile_set_language
from phrases import Phrase
from tests.conftest import wait_for_job
from tests.words import CJK, in_chinese, templates, untranslated

ENGINE = Path(__file__).resolve().parents[2] / "datalake" / "engine"


# --- the engine's messages are marked ------------------------------------------------------------

# The engine's error classes and where each takes its message (argument index).
ERRORS = {"IngestError": 1, "QueryError": 1, "RecipeError": 2, "PreviewError": 1, "CheckSpecError": 0, "DataKeyError": 0}
MARKERS = {"gettext_noop", "ngettext", "phrase", "joined", "Phrase"}


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _helpers(trees: list[ast.Module]) -> set[str]:
    """Engine functions every `return` of which gives a marked message (e.g. recipes._reserved)."""
    found: set[str] = set()
    functions = [f for tree in trees for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)]
    while True:
        before = len(found)
        for function in functions:
            returns = [r.value for r in ast.walk(function) if isinstance(r, ast.Return) and r.value is not None]
            if returns and all(_marked(value, found) for value in returns):
                found.add(function.name)
        if len(found) == before:
            return found


def _marked(node: ast.expr | None, helpers: set[str]) -> bool:
    """A marker call, a variable or attribute holding a message (error.message), a helper giving one,
    or a choice between such; never an f-string, a concatenation or a literal English text."""
    if isinstance(node, ast.Call):
        if _name(node.func) == "scrub":  # dbimport: a marked message with the password masked in its parameters
            return _marked(node.args[0], helpers)
        return _name(node.func) in MARKERS or _name(node.func) in helpers
    if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):  # a message held, or received from sql.py's worker
        return True
    if isinstance(node, ast.IfExp):
        return _marked(node.body, helpers) and _marked(node.orelse, helpers)
    if isinstance(node, ast.BoolOp):  # m.problem or gettext_noop("…")
        return all(_marked(value, helpers) for value in node.values)
    return False


def unmarked(trees: dict[str, ast.Module]) -> list[str]:
    """Where a message for a person is not marked for translation."""
    helpers = _helpers(list(trees.values()))
    problems = []

    def check(name: str, node: ast.AST, value: ast.expr | None, what: str) -> None:
        if value is not None and not (isinstance(value, ast.Constant) and value.value is None) and not _marked(value, helpers):
            problems.append(f"{name}:{node.lineno} {what}: {ast.unparse(value)[:90]}")

    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                called = _name(node.func)
                if called in ERRORS:
                    index = ERRORS[called]
                    message = node.args[index] if len(node.args) > index else None
                    message = next((k.value for k in node.keywords if k.arg == "message"), message)
                    check(name, node, message, f"{called} message")
                    if called == "CheckSpecError" and len(node.args) > 1 and isinstance(node.args[1], ast.Dict):
                        for reasons in node.args[1].values:
                            for reason in getattr(reasons, "elts", []):
                                check(name, node, reason, "check field reason")
                if called == "phrase":
                    template = node.args[0]
                    if not (isinstance(template, ast.Name) or _name(getattr(template, "func", None)) == "gettext_noop"):
                        problems.append(f"{name}:{node.lineno} phrase template not gettext_noop: {ast.unparse(template)[:90]}")
                if called in ("append", "insert") and "warning" in ast.unparse(node.func.value):
                    check(name, node, node.args[-1], "warning")
                if called in ("Inferred", "CheckResult", "result") and node.args:
                    positions = {"Inferred": [1], "CheckResult": [3], "result": [2, 3]}[called]
                    for position in positions:
                        check(name, node, node.args[position] if len(node.args) > position else None, f"{called} message")
                for keyword in node.keywords:
                    if keyword.arg == "warning":
                        check(name, node, keyword.value, "warning=")
            if isinstance(node, ast.Assign) and any(ast.unparse(t).endswith(".problem") for t in node.targets):
                check(name, node, node.value, "problem")
            if isinstance(node, ast.Assign) and any(ast.unparse(t).startswith("errors[") for t in node.targets):
                for reason in getattr(node.value, "elts", []):
                    check(name, node, reason, "check field reason")
    return problems


def test_every_message_of_the_engine_is_marked_for_translation():
    trees = {path.name: ast.parse(path.read_text()) for path in sorted(ENGINE.glob("*.py"))}
    assert len(trees) >= 15
    assert unmarked(trees) == []


@pytest.mark.parametrize(
    "source",
    [
        'raise IngestError(IngestError.NO_ROWS, f"The file has {n} rows.")',
        'raise QueryError(QueryError.EMPTY, "Write a query.")',
        'raise RecipeError(index, "op", "Unknown op " + op)',
        'warnings.append(f"Column {name} was widened.")',
        'member.problem = f"not listed in {name}"',
        'raise PreviewError("sort", phrase(f"Unknown column {sort}"))',
        'errors["min"] = ["Give min, max or both."]',
    ],
)
def test_the_marking_check_catches_an_unmarked_message(source):
    assert unmarked({"new.py": ast.parse(source)}), source


# --- real refusals of the real engine, read in Chinese -----------------------------------------------


def _csv(tmp_path, data: bytes, name="data.csv") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _caught(kind, call):
    with pytest.raises(kind) as caught:
        call()
    return caught.value


def ragged_csv(tmp_path):
    return _caught(IngestError, lambda: ingest(_csv(tmp_path, b"a,b\n1,2\n3,4,5\n6,7\n"), tmp_path / "o.parquet")).message


def wrong_encoding(tmp_path):
    data = "机器,温度\nM1,70\n".encode("gb18030")
    options = IngestOptions(encoding="utf-8")
    return _caught(IngestError, lambda: ingest(_csv(tmp_path, data), tmp_path / "o.parquet", options)).message


def no_data_rows(tmp_path):
    return _caught(IngestError, lambda: ingest(_csv(tmp_path, "机器,温度\n".encode()), tmp_path / "o.parquet")).message


def widened_column_warning(tmp_path):
    rows = "批次\n" + "1\n" * 5 + "B7\n"
    result = ingest(_csv(tmp_path, rows.encode()), tmp_path / "o.parquet", IngestOptions(sample_rows=3, row_group_rows=2))
    return next(w for w in result.warnings if "批次" in w)


def sql_write(tmp_path):
    return _caught(QueryError, lambda: check_read_only("DELETE FROM quality.inspections")).message


def sql_two_statements(tmp_path):
    return _caught(QueryError, lambda: check_read_only("SELECT 1; SELECT 2")).message


def bad_recipe_step(tmp_path):
    steps = [{"op": "fill_missing", "columns": {"温度": "average"}}]
    return _caught(RecipeError, lambda: validate_recipe(steps, {"温度": "DOUBLE"})).explained


def recipe_unknown_column(tmp_path):
    return _caught(RecipeError, lambda: validate_recipe([{"op": "select", "columns": ["压力"]}], {"温度": "DOUBLE"})).explained


def bad_check_definition(tmp_path):
    return _caught(CheckSpecError, lambda: validate_check({"type": "range", "column": "温度"}, {"温度": "DOUBLE"})).message


def _parquet(tmp_path) -> str:
    path = str(tmp_path / "v.parquet")
    pq.write_table(pa.table({"温度": [70.5, None, 72.0], "Name": ["a", None, "c"]}), path)
    return path


def failed_quality_check(tmp_path):
    (result,) = run_checks(_parquet(tmp_path), [{"type": "not_null", "column": "温度"}])
    assert not result.passed
    return result.message


def preview_bad_filter(tmp_path):
    filters = [{"column": "温度", "op": "gt", "value": "hot"}]
    return _caught(PreviewError, lambda: preview(_parquet(tmp_path), filters=filters)).message


def import_bad_url(tmp_path):
    return _caught(IngestError, lambda: parse_database_url("ftp://reader@db/plant")).message


def import_write(tmp_path):
    return _caught(IngestError, lambda: check_select("UPDATE machines SET ok = 1", dialect="postgresql")).message


def images_without_images(tmp_path):
    path = tmp_path / "images.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ok/readme.txt", "no images here")
    options = ImageOptions()
    return _caught(IngestError, lambda: ingest_images(str(path), tmp_path / "m.parquet", lambda b: "", options)).message


REFUSALS = [
    ragged_csv,
    wrong_encoding,
    no_data_rows,
    widened_column_warning,
    sql_write,
    sql_two_statements,
    bad_recipe_step,
    recipe_unknown_column,
    bad_check_definition,
    failed_quality_check,
    preview_bad_filter,
    import_bad_url,
    import_write,
    images_without_images,
]


@pytest.mark.parametrize("make", REFUSALS, ids=[f.__name__ for f in REFUSALS])
def test_a_real_refusal_reads_in_chinese(tmp_path, make):
    message = make(tmp_path)
    assert isinstance(message, Phrase), repr(message)
    english = str(message)
    assert not untranslated(templates(message)), "makemessages -l zh_Hans and translate them"
    chinese = in_chinese(message)
    assert CJK.search(chinese) and "%(" not in chinese and chinese != english, chinese
    with translation.override("en"):
        assert translated(message) == english


def test_names_and_values_in_a_message_are_never_translated(tmp_path):
    """A column called "Name" (a word the catalogue translates) stays "Name" in the Chinese message."""
    (result,) = run_checks(_parquet(tmp_path), [{"type": "not_null", "column": "Name"}])
    with translation.override("zh-hans"):
        assert gettext("Name") != "Name"
        text = translated(result.message)
    assert text.startswith("Name：") and "缺少值" in text, text


# --- booleans as a reader sees them ------------------------------------------------------------------


@pytest.mark.parametrize(("language", "shown"), [("zh-hans", ["是", "否", ""]), ("en", ["true", "false", ""])])
def test_booleans_are_shown_in_the_readers_words(tmp_path, language, shown):
    """A column of 是/否 is stored as booleans; a page shows them in the reader's words, never True/False."""
    result = ingest(_csv(tmp_path, "合格\n是\n否\nNA\n是\n".encode()), tmp_path / "o.parquet")
    assert result.columns[0].logical == "bool"
    page = preview(str(tmp_path / "o.parquet"), names={c.identifier: c.name for c in result.columns})
    cells = Template("{% load datalake_cells %}{% for row in rows %}{{ row.0|cell }}|{% endfor %}")
    with translation.override(language):
        rendered = cells.render(Context({"rows": page.rows})).split("|")[:3]
    assert rendered == shown


# --- end to end: a person who reads Chinese ----------------------------------------------------------

GBK_CSV = "时间,机器,温度,结果\n2024年1月2日,M1,70.5,合格\n2024年1月3日,M2,71.25,不合格\n2024年1月4日,M1,,是\n".encode("gb18030")


@pytest.fixture
def chinese_member(member):
    profile_set_language(actor=member, language="zh-hans")
    return member


def _upload(member, dataset, data, filename):
    version = services.dataset_upload(actor=member, dataset=dataset, stream=io.BytesIO(data), filename=filename)
    wait_for_job(version.job, timeout=60)
    version.refresh_from_db()
    return version


def test_a_failed_ingest_job_tells_a_chinese_reader_why_in_chinese(chinese_member, production, celery_worker, dispatcher):
    dataset = services.dataset_create(actor=chinese_member, department=production, name="Inspections")
    version = _upload(chinese_member, dataset, b"a,b\n1,2\n3,4,5\n6,7\n", "ragged.csv")
    assert version.status == "failed"
    assert "有些行的字段数不是 2（第 3 行）" in version.error_message, version.error_message
    assert version.job.error_message == version.error_message
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(chinese_member)
    shown = client.get(f"/api/v1/datasets/{dataset.pk}/versions/{version.pk}/").json()
    assert shown["error_message"] == version.error_message


def test_a_published_version_keeps_warnings_checks_and_log_in_the_uploaders_language(
    chinese_member, production, celery_worker, dispatcher
):
    dataset = services.dataset_create(actor=chinese_member, department=production, name="Inspections")
    services.dataset_update(
        actor=chinese_member, dataset=dataset, checks=[{"type": "allowed_values", "column": "结果", "values": ["合格"]}]
    )
    data = "时间,,结果\n2024年1月2日,M1,不合格\n".encode()
    version = _upload(chinese_member, dataset, data, "inspections.csv")
    assert version.status == "published", version.error_message
    assert version.ingest_report["warnings"] == ["第 2 列没有名称；已命名为“column_2”。"]
    assert version.check_results[0]["passed"] is False and version.check_results[0]["message"].startswith("结果：")
    lines = list(version.job.log_lines.values_list("message", flat=True))
    assert any(line.startswith("已发布") for line in lines), lines


def test_a_chinese_reader_gets_sql_and_recipe_refusals_and_step_summaries_in_chinese(chinese_member, production):
    dataset = services.dataset_create(actor=chinese_member, department=production, name="Sensors")
    version = services.dataset_upload(actor=chinese_member, dataset=dataset, filename="s.csv", stream=io.BytesIO(GBK_CSV))
    services.version_ingest(version.pk)

    client = Client()
    client.force_login(chinese_member)  # a session: the person's kept language applies
    refused = client.post("/api/v1/sql/", {"sql": "DROP TABLE production.sensors"}, content_type="application/json")
    assert refused.status_code == 400 and refused.json()["error"] == "sql_not_read_only"
    assert "此控制台只读取数据" in refused.json()["detail"], refused.json()

    with translation.override("zh-hans"):
        with pytest.raises(Invalid) as caught:
            services.recipe_create(
                actor=chinese_member, input_dataset=dataset, name="clean", steps=[{"op": "select", "columns": ["压力"]}]
            )
    assert caught.value.message.startswith("第 1 步，columns：未知的列 '压力'"), caught.value.message
    assert caught.value.fields == {"steps.0.columns": [caught.value.message.split("：", 1)[1]]}

    recipe = services.recipe_create(
        actor=chinese_member, input_dataset=dataset, name="clean", steps=[{"op": "fill_missing", "columns": {"温度": "median"}}]
    )
    page = client.get(f"/data/{dataset.pk}/").content.decode()
    assert recipe.name in page and "填充缺失值：温度 → " in page


def test_a_chinese_warning_loses_its_example_where_values_are_masked(tmp_path):
    """Warnings are stored in the uploader's language; masking (datalake.services.sensitive) must find
    the example in a Chinese warning as it does in an English one."""
    from datalake.services.sensitive import _EXAMPLE

    warning = widened_column_warning(tmp_path)
    with translation.override("zh-hans"):
        chinese = translated(warning)
    for text in (str(warning), chinese):
        assert "B7" in text and "B7" not in _EXAMPLE.sub("", text), text
