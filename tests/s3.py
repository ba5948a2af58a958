"""A local S3-compatible server (moto's, on 127.0.0.1) for the s3:// code path of the storage and lake tests.

`LEPTON_TEST_STORAGE=s3 pytest tests/datalake` runs a whole suite against it (tests/conftest.py starts
one server for the session); tests/datalake/test_on_s3.py always runs a selection of the data-lake
journey on it, so `make test` proves the s3:// path without any setting.
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from moto.server import ThreadedMotoServer

KEY = SECRET = "test"  # moto accepts any credentials; these never leave the machine


@dataclass
class LocalS3:
    server: ThreadedMotoServer
    endpoint: str

    def options(self) -> dict:
        """LEPTON_STORAGE_OPTIONS for this server (as settings.py builds them from AWS_* variables)."""
        return {"endpoint_url": self.endpoint, "key": KEY, "secret": SECRET}

    def environ(self, url: str) -> dict:
        """The variables a subprocess (a Celery worker) needs to use the same lake."""
        return {
            "LEPTON_STORAGE_URL": url,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
        }

    def client(self):
        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1"
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def count(self, bucket: str, prefix: str) -> int:
        """How many objects the bucket holds under `prefix` (up to 1000)."""
        return self.client().list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0)

    def stop(self) -> None:
        self.server.stop()


def start() -> LocalS3:
    """Start moto's threaded server on a free port of 127.0.0.1; call stop() when done."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return LocalS3(server, f"http://{host}:{port}")
