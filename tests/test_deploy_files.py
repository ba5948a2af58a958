"""The deployment files: docker-compose.yml, the Dockerfile, .ci/run and the README's settings table.

There is no Docker engine on the build machines, so the compose file is parsed with
PyYAML and the Dockerfile read as text; the one piece of shell logic in the Dockerfile
(swapping tensorflow-cpu for the GPU build) is run for real with a recording `pip`.
"""

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ["web", "worker-cpu", "worker-gpu", "dispatcher"]
LAKE_MOUNT = "/data/lake"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _command(service: dict) -> list[str]:
    command = service["command"]
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _option(argv: list[str], *names: str) -> str | None:
    for i, part in enumerate(argv):
        if part in names and i + 1 < len(argv):
            return argv[i + 1]
    return None


# --- docker-compose.yml ------------------------------------------------------------------


def test_compose_has_every_part_of_the_platform(compose):
    assert set(compose["services"]) >= {"postgres", "redis", *APP_SERVICES}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_point_at_postgres_redis_and_the_lake(compose, name):
    env = compose["services"][name]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert env["SECRET_KEY"], "SECRET_KEY must be set"
    assert str(env["DEBUG"]).lower() == "false"
    assert env["ALLOWED_HOSTS"]
    assert env["LEPTON_STORAGE_URL"] == f"file://{LAKE_MOUNT}"


def test_secret_key_has_no_default_in_compose(compose):
    # "${SECRET_KEY:?…}" makes compose refuse to start without one, rather than run with a known key.
    assert compose["services"]["web"]["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")


@pytest.mark.parametrize("name", ["web", "worker-cpu", "worker-gpu"])
def test_web_and_workers_share_the_lake_volume(compose, name):
    assert "lake" in compose["volumes"]
    mounts = compose["services"][name]["volumes"]
    assert f"lake:{LAKE_MOUNT}" in mounts


def test_web_runs_gunicorn_on_the_wsgi_app(compose):
    argv = _command(compose["services"]["web"])
    assert argv[0] == "gunicorn" and "lepton.wsgi:application" in argv
    assert _option(argv, "--bind", "-b").endswith(":8000")


@pytest.mark.parametrize(("name", "queue"), [("worker-cpu", "cpu"), ("worker-gpu", "gpu")])
def test_each_worker_serves_its_own_queue(compose, name, queue):
    argv = _command(compose["services"][name])
    assert argv[:4] == ["celery", "-A", "lepton", "worker"]
    assert _option(argv, "-Q", "--queues") == queue


def test_dispatcher_runs_once(compose):
    dispatcher = compose["services"]["dispatcher"]
    assert _command(dispatcher)[-1] == "run_dispatcher"
    assert dispatcher.get("deploy", {}).get("replicas", 1) == 1


def test_gpu_worker_reserves_nvidia_gpus_and_installs_cuda_tensorflow(compose):
    gpu = compose["services"]["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] and d["count"] == "all" for d in devices)
    assert gpu["build"]["args"]["TF_PACKAGE"] == "tensorflow[and-cuda]"
    assert gpu["image"] != compose["services"]["worker-cpu"]["image"], "the GPU image must not overwrite the CPU one"


@pytest.mark.parametrize("name", ["web", "worker-cpu", "dispatcher"])
def test_cpu_services_reserve_no_gpu(compose, name):
    assert "reservations" not in compose["services"][name].get("deploy", {}).get("resources", {})


@pytest.mark.parametrize("name", ["postgres", "redis", "web", "worker-cpu", "worker-gpu", "dispatcher"])
def test_services_have_healthchecks(compose, name):
    assert compose["services"][name]["healthcheck"]["test"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_database_and_broker_and_migrations(compose, name):
    depends = compose["services"][name]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert _command(compose["services"]["migrate"])[-2:] == ["migrate", "--noinput"]


# --- Dockerfile --------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_builds_on_python_311_slim(dockerfile):
    instructions = _instructions(dockerfile)
    assert instructions[0] == ("FROM", "python:3.11-slim") or instructions[0][1].startswith("python:3.11-slim")


def test_dockerfile_takes_the_tensorflow_package_as_a_build_arg(dockerfile):
    assert ("ARG", "TF_PACKAGE=tensorflow-cpu") in _instructions(dockerfile)


def test_dockerfile_installs_requirements_and_runs_as_a_non_root_user(dockerfile):
    instructions = _instructions(dockerfile)
    words = [word for word, _ in instructions]
    install = next(i for i, (w, args) in enumerate(instructions) if w == "RUN" and "pip install -r requirements.txt" in args)
    users = [args for w, args in instructions if w == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert words.index("USER") > install, "requirements are installed as root, the app runs as the user"
    assert any(w == "RUN" and "collectstatic" in args for w, args in instructions)
    cmd = next(args for w, args in reversed(instructions) if w == "CMD")
    assert "gunicorn" in cmd and "lepton.wsgi:application" in cmd


def _run_install_step(tmp_path: Path, dockerfile: str, tf_package: str) -> list[str]:
    """Run the Dockerfile's requirements RUN step with a `pip` that records what it was asked to install."""
    script = next(args for w, args in _instructions(dockerfile) if w == "RUN" and "TF_PACKAGE" in args)
    shutil.copy(ROOT / "requirements.txt", tmp_path / "requirements.txt")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "installed.txt"
    fake_pip = bin_dir / "pip"
    # `pip install -r FILE` → copy FILE's lines to the record; `pip show X` → "not installed".
    fake_pip.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = install ] && [ "$2" = -r ]; then cat "$3" >> {record}; exit 0; fi\n'
        'if [ "$1" = show ]; then exit 1; fi\n'
        "exit 2\n"
    )
    fake_python = bin_dir / "python"
    fake_python.write_text("#!/bin/sh\nexit 0\n")
    for tool in (fake_pip, fake_python):
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "TF_PACKAGE": tf_package}
    subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, check=True, capture_output=True)
    return [line.strip() for line in record.read_text().splitlines() if line.strip()]


def _tf_pin() -> tuple[str, str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pin = next(line for line in lines if re.match(r"(?i)tensorflow[-_]cpu==", line))
    name, version = pin.split("==")
    return name, version


def test_cpu_image_installs_requirements_as_pinned(tmp_path, dockerfile):
    installed = _run_install_step(tmp_path, dockerfile, "tensorflow-cpu")
    name, version = _tf_pin()
    assert f"{name}=={version}" in installed
    assert installed == [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines() if line.strip()]


def test_gpu_image_swaps_tensorflow_cpu_for_cuda_tensorflow_at_the_same_version(tmp_path, dockerfile):
    installed = _run_install_step(tmp_path, dockerfile, "tensorflow[and-cuda]")
    _name, version = _tf_pin()
    assert f"tensorflow[and-cuda]=={version}" in installed
    assert not [line for line in installed if re.match(r"(?i)tensorflow[-_]cpu", line)]
    # Everything else stays pinned as in requirements.txt.
    assert len(installed) == len([line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.strip()])


def test_docker_context_leaves_out_the_venv_and_local_data():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git"} <= set(ignored)


# --- CI and README -----------------------------------------------------------------------


def test_ci_script_is_executable_strict_bash():
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/bash")
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(script)], check=True)


def _settings_variables() -> set[str]:
    source = (ROOT / "lepton" / "settings.py").read_text()
    names = set(re.findall(r"\benv_(?:str|bool|int|float|list|secret)\(\s*\"([A-Z0-9_]+)\"", source))
    # env_secret also reads NAME_FILE; the README mentions that once for all of them.
    return names


def test_readme_lists_every_environment_variable_the_settings_read():
    readme = (ROOT / "README.md").read_text()
    names = _settings_variables()
    assert len(names) > 20, "the settings read their values through the env_* helpers"
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert not missing, f"README.md does not list: {missing}"


def test_readme_lists_the_variables_serve_all_reads():
    source = (ROOT / "lepton" / "management" / "commands" / "serve_all.py").read_text()
    names = set(re.findall(r"env_(?:str|int)\(\"([A-Z0-9_]+)\"", source))
    assert names >= {"LEPTON_BIND", "LEPTON_WORKER_QUEUES"}
    readme = (ROOT / "README.md").read_text()
    assert not sorted(name for name in names if f"`{name}`" not in readme)


def test_readme_states_the_numeric_defaults_the_settings_use():
    source = (ROOT / "lepton" / "settings.py").read_text()
    lines = (ROOT / "README.md").read_text().splitlines()
    rows = {line.split("|")[1].strip(" `"): line for line in lines if line.startswith("| `")}
    numeric = re.findall(r"\benv_(?:int|float)\(\s*\"([A-Z0-9_]+)\"\s*,\s*([0-9.]+)\)", source)
    assert numeric
    wrong = [(name, default) for name, default in numeric if f"| `{default}` |" not in rows.get(name, "")]
    assert not wrong, f"README.md gives other defaults than lepton/settings.py for: {wrong}"
