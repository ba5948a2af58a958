"""bench/load.py's locust users for a few seconds against a live server, so the load benchmark cannot rot.

The users run in a child process (`bench/load.py --child locust`), as in the benchmark: locust
monkey-patches the standard library with gevent on import, which must not happen in the test
process. The data they need (accounts, tokens, datasets, a production model) comes from the
benchmark's own `setup_data`, here in the test database.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOAD = ROOT / "bench" / "load.py"

pytestmark = pytest.mark.slow


def _run_users(plan: dict, host: str, tmp_path: Path, *, seconds: int, browsers: int, predictors: int, uploaders: int) -> dict:
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out = tmp_path / "result.json"
    argv = [
        sys.executable, str(LOAD), "--child", "locust", "--plan", str(tmp_path / "plan.json"), "--host", host,
        "--out", str(out), "--duration", str(seconds), "--browsers", str(browsers), "--predictors", str(predictors),
        "--uploaders", str(uploaders), "--browse-wait", "0.2", "--predict-wait", "0.2", "--upload-every", "2",
        "--spawn-rate", "20",
    ]  # fmt: skip
    done = subprocess.run(
        argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture
def plan(transactional_db):
    from bench.load import setup_data

    return setup_data(browsers=2, predictors=1, datasets=2, rows=300, trees=5, onnx=False)


def test_browsers_predictors_and_uploader_run_without_a_failed_request(live_server, plan, tmp_path):
    from lepton.jobs.models import Job

    result = _run_users(plan, live_server.url, tmp_path, seconds=8, browsers=2, predictors=1, uploaders=1)

    assert result["total"]["failures"] == 0, result["errors"]
    assert result["exceptions"] == []
    made = {entry["name"]: entry for entry in result["entries"]}
    # Each kind of user did its work: both people logged in, pages were read, predictions
    # answered, and the uploader's CSV and training run were accepted.
    assert made["login (POST, then home)"]["requests"] == 2
    assert made["POST predict (5 rows)"]["requests"] >= 5
    assert made["POST dataset upload (CSV)"]["requests"] >= 1
    assert made["POST training run"]["requests"] >= 1
    pages = [name for name, entry in made.items() if name.startswith("/") and entry["requests"]]
    assert len(pages) >= 3, pages
    assert {made[name]["user"] for name in made} == {"Browser", "Predictor", "Uploader"}
    # The uploads and runs are real: their jobs wait in the database (no dispatcher runs here).
    assert Job.objects.filter(kind="datalake.ingest").count() >= 1
    assert Job.objects.filter(kind="models_repo.train").count() >= 1


def test_a_refused_prediction_counts_as_a_failure(live_server, plan, tmp_path):
    plan["predict_tokens"] = ["not-a-token"]

    result = _run_users(plan, live_server.url, tmp_path, seconds=2, browsers=0, predictors=1, uploaders=0)

    assert result["total"]["failures"] == result["total"]["requests"] > 0
    assert "status 401" in result["errors"][0]["error"]
