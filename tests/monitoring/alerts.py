"""Helpers of the alert tests: a model in production without training, published dataset versions, a local webhook receiver."""

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from datalake import services as datalake_services
from datalake.models import VersionStatus
from models_repo import services as models_services
from models_repo.models import ModelAlias, ModelVersion


def production_model(owner, department, name="Quality predictor"):
    """A registered model whose v1 (a row only: nothing is trained) holds the production alias."""
    model = models_services.model_create(actor=owner, department=department, name=name)
    version = ModelVersion.objects.create(
        model=model, number=1, flavor="sklearn", task="classification", artifact_sha256="a" * 64
    )
    ModelAlias.objects.create(model=model, name="production", version=version)
    return model, version


def publish(actor, dataset, text: str):
    pending = datalake_services.dataset_upload(actor=actor, dataset=dataset, stream=io.BytesIO(text.encode()), filename="s.csv")
    version = datalake_services.version_ingest(pending.pk)
    assert version.status == VersionStatus.PUBLISHED, version.error_message
    return version


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread that records each POST and answers with the next status of `statuses`."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"ok": status < 300}).encode())

            def do_GET(self):  # only a followed redirect would GET
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": b""})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
