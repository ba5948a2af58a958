"""The embedded broker (lepton/broker.py): a consumer never reads a half-written message.

With kombu's stock filesystem transport this scenario crashes the consumer with a
JSONDecodeError within a few hundred messages (the file is created, then written).
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

ROOT = Path(__file__).resolve().parent.parent.parent
TRANSPORT = "lepton.broker:Transport"
PRODUCER = """
import json, sys
from kombu import Connection, Exchange, Queue
options, count = json.loads(sys.argv[1]), int(sys.argv[2])
queue = Queue("cpu", Exchange("cpu", type="direct"), routing_key="cpu")
with Connection("filesystem://", transport="lepton.broker:Transport", transport_options=options) as conn:
    with conn.SimpleQueue(queue) as simple:
        for i in range(count):
            simple.put({"i": i, "padding": "x" * 200_000})
"""


@pytest.mark.slow
def test_consumer_gets_every_message_whole_while_two_processes_write_large_ones(tmp_path):
    for sub in ("queue", "processed", "control"):
        (tmp_path / sub).mkdir()
    options = {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "processed_folder": str(tmp_path / "processed"),
        "control_folder": str(tmp_path / "control"),
        "store_processed": False,
        "polling_interval": 0.0005,
    }
    per_producer, producers = 300, 2
    procs = [
        subprocess.Popen([sys.executable, "-c", PRODUCER, json.dumps(options), str(per_producer)], cwd=ROOT)
        for _ in range(producers)
    ]
    received = []
    queue = Queue("cpu", Exchange("cpu", type="direct"), routing_key="cpu")
    try:
        with Connection("filesystem://", transport=TRANSPORT, transport_options=options) as conn:
            with conn.SimpleQueue(queue) as simple:
                deadline = time.monotonic() + 60
                while len(received) < per_producer * producers and time.monotonic() < deadline:
                    try:
                        message = simple.get(timeout=0.2)
                    except simple.Empty:
                        continue
                    received.append(message.payload["i"])
                    message.ack()
    finally:
        for proc in procs:
            proc.wait(30)
    assert all(proc.returncode == 0 for proc in procs)
    assert sorted(received) == sorted(list(range(per_producer)) * producers)
    assert not list((tmp_path / "queue").iterdir()), "no message or temporary file is left behind"
