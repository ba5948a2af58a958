"""Run the whole platform in the foreground: web (gunicorn), one Celery worker, the dispatcher.

This is what `make run` starts. It is a small supervisor, not a process manager for
production (there, run each part as its own service; see docs/operations.md):
- every child's output is printed with its name in front (`web |`, `worker |`, …);
- Ctrl-C or SIGTERM stops all children (SIGTERM, then SIGKILL after a grace period) and
  exits 0;
- when one child dies on its own, the others are stopped and the command exits 1 with a
  message naming the child that died.
"""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lepton.settings import env_int, env_str

# Linux: ask the kernel to SIGTERM a child when this supervisor dies, even by SIGKILL,
# so no orphan keeps the port or the broker busy. Elsewhere children are stopped only
# on the signals we catch.
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


class Command(BaseCommand):
    help = "Start web (gunicorn), a Celery worker and the job dispatcher together; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind", default=env_str("LEPTON_BIND", "127.0.0.1:8000"), help="host:port for the web server (LEPTON_BIND)."
        )
        parser.add_argument(
            "--web-workers", type=int, default=env_int("LEPTON_WEB_WORKERS", 2), help="gunicorn processes (LEPTON_WEB_WORKERS)."
        )
        parser.add_argument(
            "--web-threads", type=int, default=env_int("LEPTON_WEB_THREADS", 4), help="threads per process (LEPTON_WEB_THREADS)."
        )
        parser.add_argument(
            "--queues",
            default=env_str("LEPTON_WORKER_QUEUES", "cpu"),
            help="Celery queues the worker serves, comma-separated (LEPTON_WORKER_QUEUES).",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=env_int("LEPTON_WORKER_CONCURRENCY", 2),
            help="jobs the worker runs at once (LEPTON_WORKER_CONCURRENCY).",
        )
        parser.add_argument(
            "--grace", type=float, default=30.0, help="Seconds children get to stop after SIGTERM before SIGKILL."
        )

    def handle(self, *args, bind, web_workers, web_threads, queues, concurrency, grace, **options):
        if ":" not in bind:
            raise CommandError(f"--bind/LEPTON_BIND must be host:port, not {bind!r}.")
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        loglevel = settings.LOG_LEVEL.lower()
        children = [
            Child(
                "web",
                [
                    python,
                    "-m",
                    "gunicorn",
                    "lepton.wsgi:application",
                    "--bind",
                    bind,
                    "--workers",
                    str(web_workers),
                    "--threads",
                    str(web_threads),
                    "--graceful-timeout",
                    "10",
                    # As the Dockerfile: longer than a client's pause between calls, so that a
                    # reused connection is not closed under it (a connection reset otherwise).
                    "--keep-alive",
                    "75",
                    # The control socket lives at one path per user: a second instance would take it over.
                    "--no-control-socket",
                    "--access-logfile",
                    "-",
                    "--log-level",
                    loglevel,
                ],
            ),
            Child(
                "worker",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "lepton",
                    "worker",
                    "-Q",
                    queues,
                    "--concurrency",
                    str(concurrency),
                    "--loglevel",
                    loglevel,
                    # One worker per installation here: nothing to synchronise with at start-up.
                    "--without-gossip",
                    "--without-mingle",
                ],
            ),
            Child("dispatcher", [python, manage, "run_dispatcher"]),
        ]

        stop_reason: list[str] = []

        def on_signal(signum, frame):
            if not stop_reason:
                stop_reason.append(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        out_lock = threading.Lock()
        width = max(len(c.name) for c in children)

        def say(line: str) -> None:
            with out_lock:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()

        def pump(child: Child) -> None:
            assert child.proc and child.proc.stdout
            for raw in iter(child.proc.stdout.readline, b""):
                say(f"{child.name:<{width}} | {raw.decode(errors='replace').rstrip()}")

        for child in children:
            # Own process group: a Ctrl-C in the terminal reaches only this supervisor, which then
            # stops each child exactly once (Celery treats a second signal as "stop right now").
            child.proc = subprocess.Popen(
                child.argv,
                cwd=settings.BASE_DIR,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                process_group=0,
                preexec_fn=_die_with_parent,
            )
            child.reader = threading.Thread(target=pump, args=(child,), daemon=True, name=f"pump-{child.name}")
            child.reader.start()
            say(f"serve_all | started {child.name} (pid {child.proc.pid})")

        host, port = bind.rsplit(":", 1)
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host.strip('[]')}:{port}/"
        announced = False
        died: Child | None = None
        while not stop_reason:
            for child in children:
                if child.proc.poll() is not None:
                    died = child
                    break
            if died:
                break
            if not announced and _answers(host, int(port)):
                announced = True
                say(self._banner(url, queues, concurrency))
            time.sleep(0.2)

        if died:
            say(f"serve_all | {died.name} exited with code {died.proc.returncode}; stopping the others.")
        else:
            say(f"serve_all | {stop_reason[0]} received; stopping web, worker and dispatcher.")
        self._stop_all(children, grace, say)
        for child in children:
            if child.reader:
                child.reader.join(timeout=2)
        if died:
            say(f"serve_all | stopped because {died.name} died (exit code {died.proc.returncode}).")
            sys.exit(1)
        say("serve_all | all stopped.")

    @staticmethod
    def _stop_all(children: list[Child], grace: float, say) -> None:
        for child in children:
            if child.proc.poll() is None:
                child.proc.terminate()
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"serve_all | {child.name} did not stop within {grace:g} s; killing it.")
                child.proc.kill()
                child.proc.wait()

    @staticmethod
    def _banner(url: str, queues: str, concurrency: int) -> str:
        from django.contrib.auth import get_user_model

        from lepton.management.commands.load_demo import PLATFORM_ADMIN, demo_logins_text

        lines = [
            "",
            f"  Lepton is up at {url}",
            f"  admin: {url}admin/   health: {url}healthz   API docs: {url}api/docs/",
            f"  worker queues: {queues} ({concurrency} at once); Ctrl-C stops everything.",
        ]
        try:
            demo = get_user_model().objects.filter(username=PLATFORM_ADMIN).exists()
        except Exception:  # noqa: BLE001 - the banner must never stop the platform
            demo = False
        if demo:
            lines.extend("  " + line for line in demo_logins_text().splitlines())
        lines.append("")
        return "\n".join(lines)


def _answers(host: str, port: int) -> bool:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else host.strip("[]")
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False
