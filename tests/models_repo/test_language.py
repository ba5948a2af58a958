"""What the model engine writes for a person reaches a zh-hans reader in Chinese.

The engine (no Django) marks its refusals, progress steps and warnings with phrases.gettext_noop /
ngettext / phrase; the services translate them where they are stored or answered
(lepton.i18n.translated). These tests raise real refusals from the engine functions and read them
in zh-hans, check that no unmarked text slips into the engine's sources, and run a training job
for a person who reads Chinese.
"""

import ast
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.utils import translation

from models_repo.engine import deep, tabular, uploaded
from models_repo.engine.errors import TrainingError
from models_repo.engine.spec import parse_spec
from tests.words import CJK, assert_chinese, untranslated

ENGINE = Path(__file__).resolve().parents[2] / "models_repo" / "engine"
MARKERS = ("gettext_noop", "ngettext", "phrase")


def write(tmp_path, frame: pd.DataFrame) -> str:
    path = str(tmp_path / "data.parquet")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def table(n: int = 60, classes: tuple = ("好", "坏"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    temperature = rng.normal(size=n)
    return pd.DataFrame(
        {
            "温度": temperature,
            "line": rng.choice(["甲", "乙"], size=n),
            "质量": [classes[i % len(classes)] for i in range(n)],
        }
    )


COLUMNS = {"温度": "DOUBLE", "line": "VARCHAR", "质量": "VARCHAR"}
SPEC = {"task": "classification", "target": "质量", "features": ["温度", "line"], "algorithms": ["random_forest"]}


def refused(call) -> TrainingError:
    with pytest.raises(TrainingError) as caught:
        call()
    return caught.value


def train_on(tmp_path, frame, **change):
    spec = parse_spec({**SPEC, **change}, COLUMNS)
    return tabular.train(spec, write(tmp_path, frame), str(tmp_path / "out"))


def sensors(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame({"t": range(n), "vibration": np.linspace(0, 1, n), "状态": ["ok", "bad"] * (n // 2)})


# --- refusals of the real engine functions, read in Chinese ------------------------------------------

REFUSALS = {
    "roc_auc-with-three-classes": lambda tmp: train_on(tmp, table(classes=("好", "坏", "中")), scoring="roc_auc"),
    "constant-target": lambda tmp: train_on(tmp, table(classes=("好",))),
    "too-few-rows": lambda tmp: train_on(tmp, table(n=6)),
    "too-few-rows-with-cv": lambda tmp: train_on(tmp, table(n=7), cv_folds=3),
    "too-few-groups": lambda tmp: train_on(tmp, table(), features=["温度"], group_column="line", split={"method": "stratified"}),
    "spec-with-several-problems": lambda tmp: parse_spec(
        {"task": "classification", "target": "nope", "algorithms": [{"name": "magic"}], "seed": -1}, COLUMNS
    ),
    "bad-window": lambda tmp: deep._sequence_data(
        deep.DeepSpec("sequence_classification", "keras_lstm", "状态", ["vibration"], "t", None, 0.2, 0),
        write(tmp, sensors()),
        deep.validate_keras_options({"window": 48}, "sequence_classification", "keras_lstm"),
        [],
    ),
    "keras-option-out-of-range": lambda tmp: deep.validate_keras_options({"epochs": 0}, "classification", "keras_mlp"),
    "model-input-lacks-columns": lambda tmp: tabular._model_input(
        type("Fitted", (), {"feature_names_in_": ["温度", "line", "压力"]})(), pd.DataFrame({"温度": [1.0]})
    ),
}


@pytest.mark.parametrize("call", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refusal_of_the_engine_reads_in_chinese_with_its_fields(call, tmp_path):
    error = refused(lambda: call(tmp_path))
    assert_chinese(error.message)
    assert error.fields
    for reasons in error.fields.values():
        for reason in reasons:
            assert_chinese(reason)


def test_the_spec_refusal_counts_its_other_problems_in_chinese():
    error = refused(lambda: REFUSALS["spec-with-several-problems"](None))
    assert str(error.message).endswith("(and 2 more problems)")
    assert assert_chinese(error.message).endswith("（另有 2 个问题）")


def test_the_services_answer_a_refused_spec_in_the_requests_language():
    from models_repo.services.training import _invalid

    error = refused(lambda: REFUSALS["spec-with-several-problems"](None))
    with translation.override("zh-hans"):
        answer = _invalid(error)
    assert CJK.search(answer.message) and "spec.algorithms.0.name" in answer.fields
    assert all(CJK.search(reason) for reasons in answer.fields.values() for reason in reasons), answer.fields


UPLOADS = {
    "pickle": (lambda path: uploaded.detect(path, "model.pkl"), pickle.dumps({"weights": [1, 2]})),
    "not-a-model": (lambda path: uploaded.detect(path, "model.txt"), b"hello, this is text\n" * 10),
    "broken-onnx": (lambda path: uploaded.detect(path, "model.onnx"), b"\x00\x01 not protobuf"),
    "schema-names-twice": (lambda path: uploaded.clean_schema([{"name": "温度"}, {"name": "温度"}]), b""),
    "classes-twice": (lambda path: uploaded.clean_classes({"classes": ["a", "a"]}), b""),
    "keras-with-text-input": (
        lambda path: uploaded.inspect_keras_archive(path, [{"name": "line", "type": "string", "nullable": False}], None),
        b"",
    ),
}


@pytest.mark.parametrize(("check", "content"), UPLOADS.values(), ids=UPLOADS.keys())
def test_an_uploaded_model_that_fails_its_check_is_refused_in_chinese(check, content, tmp_path):
    path = tmp_path / "upload"
    path.write_bytes(content)
    with pytest.raises(uploaded.UploadRefused) as caught:
        check(str(path))
    assert_chinese(caught.value.message)


def test_inputs_a_keras_model_cannot_take_are_refused_in_chinese():
    from models_repo.engine.errors import said

    meta = {"task": "regression", "input_schema": [{"name": "温度"}, {"name": "压力"}]}
    with pytest.raises(ValueError) as caught:
        deep.predict(None, pd.DataFrame({"温度": [1.0]}), meta)
    assert str(caught.value) == "missing feature columns: 压力"
    assert assert_chinese(said(caught.value)) == "缺少特征列：压力"


# --- progress and warnings -----------------------------------------------------------------------------


def test_the_progress_and_warnings_of_a_search_read_in_chinese(tmp_path):
    steps = []
    spec = parse_spec(
        {**SPEC, "algorithms": [{"name": "random_forest", "params": {"n_estimators": 5}, "search": {"max_depth": [2, 4]}}]},
        COLUMNS,
    )
    result = tabular.train(spec, write(tmp_path, table(n=40)), str(tmp_path / "out"), progress=lambda pct, msg: steps.append(msg))
    messages = [str(m) for m in steps]
    assert "Fitting random_forest (1/1)" in messages and "random_forest (1/1): fold 3/3, 6/6 fits" in messages
    for step in steps:
        assert_chinese(step)
    assert {w["code"] for w in result.warnings} >= {"few_rows"}
    for warning in result.warnings:
        assert_chinese(warning["message"])


# --- no unmarked text in the engine ----------------------------------------------------------------------


def _marked(node) -> bool:
    """A marker call, a name (bound to one), a marked table's entry, or the empty string."""
    if isinstance(node, ast.Call):
        return getattr(node.func, "id", None) in (*MARKERS, "_no_column")
    return isinstance(node, ast.Name | ast.Subscript) or (isinstance(node, ast.Constant) and node.value == "")


def _words_for_a_person(node) -> list:
    """The arguments of `node` (a call or a dict) that a person reads."""
    if isinstance(node, ast.Dict):
        return [
            v
            for k, v in zip(node.keys, node.values, strict=True)
            if isinstance(k, ast.Constant) and k.value in ("message", "reason")
        ]
    if not isinstance(node, ast.Call):
        return []
    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
    keywords = [k.value for k in node.keywords if k.arg in ("message", "reason")]
    if name == "TrainingError":  # TrainingError(code, message, fields): the message and every reason
        reasons = []
        if len(node.args) > 2 and isinstance(node.args[2], ast.Dict):
            reasons = [e for v in node.args[2].values if isinstance(v, ast.List) for e in v.elts]
        if len(node.args) > 2 and isinstance(node.args[2], ast.DictComp) and isinstance(node.args[2].value, ast.List):
            reasons = list(node.args[2].value.elts)
        return node.args[1:2] + keywords + reasons
    if name in ("progress", "add"):  # progress(pct, message); the spec's err.add(key, reason)
        return node.args[1:2] + keywords
    if name in ("UploadRefused", "ConversionError", "ValueError"):  # a ValueError's words reach the predict API
        return node.args[:1] + keywords
    return []


# Refusals only a caller's mistake can raise (the services always pass an image loader).
FOR_PROGRAMMERS = {"'image_classification needs image_loader(sha256) -> bytes'"}


def test_every_text_the_engine_writes_for_a_person_is_marked_for_translation():
    # A message written as an f-string or a bare literal would reach a Chinese reader in English: every
    # TrainingError message and reason, progress step, warning or report "message"/"reason", spec
    # problem, upload refusal and conversion reason in models_repo/engine is a marker call or a name.
    sources = sorted(ENGINE.rglob("*.py"))
    assert len(sources) > 20
    unmarked, seen = [], 0
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            for argument in _words_for_a_person(node):
                seen += 1
                if not _marked(argument) and ast.unparse(argument) not in FOR_PROGRAMMERS:
                    unmarked.append(f"{source.relative_to(ENGINE)}:{argument.lineno}: {ast.unparse(argument)[:60]}")
    assert seen > 200
    assert not unmarked, "\n".join(unmarked)


def test_every_marked_text_of_the_engine_is_translated():
    marked = []
    for source in sorted(ENGINE.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("gettext_noop", "ngettext"):
                texts = [a.value for a in node.args[:2] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                marked.append((texts[0], texts[1] if len(texts) > 1 else None))
    assert len(marked) > 250
    assert not untranslated(marked), untranslated(marked)


def test_an_onnx_graph_that_does_not_fit_its_schema_is_refused_in_chinese(tmp_path):
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "g", [x], [y])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(tmp_path / "m.onnx"))
    schema = [{"name": "温度", "type": "number", "nullable": False}, {"name": "压力", "type": "number", "nullable": False}]
    with pytest.raises(uploaded.UploadRefused) as caught:
        uploaded.inspect_onnx(str(tmp_path / "m.onnx"), schema, None)
    assert str(caught.value.message) == "The graph takes 3 columns; input_schema names 2."
    assert assert_chinese(caught.value.message) == "计算图接受 3 列；input_schema 命名了 2 列。"


def test_a_skops_file_with_untrusted_types_is_refused_in_chinese(tmp_path):
    sio = pytest.importorskip("skops.io")
    spec = parse_spec(SPEC, COLUMNS)
    pipeline = tabular.build_pipeline(spec, "random_forest", {"n_estimators": 3}, ["温度", "line"])
    frame = table()
    pipeline.fit(frame[["温度", "line"]], frame["质量"])
    sio.dump(pipeline, tmp_path / "m.skops")
    with pytest.raises(uploaded.UploadRefused) as caught:
        uploaded.inspect_skops(str(tmp_path / "m.skops"), None)
    assert caught.value.code == "untrusted_types"
    assert "models_repo.engine.tabular" in assert_chinese(caught.value.message)


# --- a training job for a person who reads Chinese ---------------------------------------------------------


@pytest.fixture
def chinese_member(member):
    from lepton.services import profile_set_language

    profile_set_language(actor=member, language="zh-hans")
    return member


def run_job(run, monkeypatch) -> list[str]:
    """Run `run`'s job as the worker would (in its requester's language); the progress messages it stored."""
    from lepton.jobs import runner

    stored = []
    original = runner.JobContext.progress

    def progress(self, percent, message=""):
        original(self, percent, message)
        self.job.refresh_from_db(fields=["progress_message"])
        stored.append(self.job.progress_message)

    monkeypatch.setattr(runner.JobContext, "progress", progress)
    runner.run(run.job.pk)
    return stored


def test_a_chinese_readers_failed_run_says_why_in_chinese(chinese_member, inspections, monkeypatch):
    from lepton.jobs.models import JobLogLine
    from models_repo import services
    from models_repo.models import RunStatus
    from tests.models_repo.conftest import SPEC as INSPECTIONS

    # Two lines are too few groups for a stratified split by group: the engine refuses the data.
    spec = {**INSPECTIONS, "features": ["温度", "pressure"], "group_column": "line"}
    run = services.training_start(actor=chinese_member, dataset_version=inspections, spec=spec)
    progress = run_job(run, monkeypatch)
    run.refresh_from_db()
    job = run.job
    job.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error_code == "too_few_rows"
    assert run.error_message == "分组列 'line' 只有 2 个分组；按分组划分至少需要 5 个。"
    assert job.status == "failed" and job.error_message == run.error_message
    assert JobLogLine.objects.filter(job=job, level="error", message=run.error_message).exists()
    assert progress and all(CJK.search(message) for message in progress), progress


def test_a_chinese_readers_run_reports_its_progress_warnings_and_result_in_chinese(chinese_member, production, monkeypatch):
    import io

    from datalake import services as datalake_services
    from lepton.jobs.models import JobLogLine
    from models_repo import services
    from models_repo.models import RunStatus
    from tests.models_repo.conftest import SPEC as INSPECTIONS
    from tests.models_repo.conftest import inspections_csv

    dataset = datalake_services.dataset_create(actor=chinese_member, department=production, name="Few inspections")
    version = datalake_services.dataset_upload(
        actor=chinese_member, dataset=dataset, stream=io.BytesIO(inspections_csv(rows=40)), filename="i.csv"
    )
    version = datalake_services.version_ingest(version.pk)
    spec = {
        **INSPECTIONS,
        "algorithms": [{"name": "random_forest", "params": {"n_estimators": 5}, "search": {"max_depth": [2, 4]}}],
    }
    run = services.training_start(actor=chinese_member, dataset_version=version, spec=spec)
    progress = run_job(run, monkeypatch)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert "正在拟合 random_forest (1/1)" in progress
    assert "random_forest (1/1)：第 3/3 折，已拟合 6/6 次" in progress
    assert all(CJK.search(message) and "%(" not in message for message in progress), progress
    few = next(w for w in run.warnings if w["code"] == "few_rows")
    assert few["message"] == "只有 40 行：指标会有较大波动。"
    lines = list(JobLogLine.objects.filter(job=run.job).values_list("message", flat=True))
    assert "few_rows: 只有 40 行：指标会有较大波动。" in lines
    assert any(line.startswith("random_forest 已训练完成；留出集指标：") for line in lines), lines
