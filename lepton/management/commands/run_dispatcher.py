"""Run the job dispatcher: release queued jobs, reap lost ones, enforce cancels (one per installation)."""

import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from lepton.jobs.dispatcher import dispatch, reap, run_periodic


class Command(BaseCommand):
    help = "Release queued jobs to the Celery queues by priority and fair share; reap stale jobs."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one dispatch and one reap pass, then exit.")
        parser.add_argument("--reap-every", type=float, default=2.0, help="Seconds between reaper passes.")

    def handle(self, *args, once=False, reap_every=2.0, **options):
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        interval = settings.LEPTON_DISPATCH_INTERVAL
        self.stdout.write(f"Dispatcher running (every {interval} s, reaper every {reap_every} s).")
        last_reap = 0.0
        periodic_runs: dict[str, float] = {}
        while not stopping:
            close_old_connections()
            try:
                if time.monotonic() - last_reap >= reap_every:
                    outcome = reap()
                    last_reap = time.monotonic()
                    if outcome:
                        self.stdout.write(f"reaper: {outcome}")
                    for path, result in run_periodic(periodic_runs).items():
                        if result:
                            self.stdout.write(f"{path}: {result}")
                report = dispatch()
            except Exception as exc:  # noqa: BLE001 - a database blip must not end the loop
                self.stderr.write(f"dispatcher pass failed: {exc}")
                time.sleep(max(interval, 1.0))
                continue
            if once:
                break
            # Keep releasing without a pause while there is work that fits; while jobs wait only
            # for a slot, look again soon, since a slot frees the moment a job ends.
            if report.released:
                time.sleep(0.01)
            elif report.slot_bound:
                time.sleep(settings.LEPTON_DISPATCH_BUSY_INTERVAL)
            else:
                time.sleep(interval)
        self.stdout.write("Dispatcher stopped.")
