"""Resumable uploads through the API: chunks in order, resume after a break, completion, limits."""

import hashlib

import pytest
from rest_framework.test import APIClient

from datalake import services
from datalake.models import DatasetVersion, UploadSession
from lepton.storage import get_storage

DATA = b"machine,temperature\n" + b"".join(f"M{i % 7},{60 + i % 30}.5\n".encode() for i in range(5000))


@pytest.fixture
def sensors(member, production):
    return services.dataset_create(actor=member, department=production, name="Sensors")


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def start(client, dataset, size=len(DATA), **extra):
    return client.post(f"/api/v1/datasets/{dataset.pk}/uploads/", {"filename": "big.csv", "size": size, **extra}, format="json")


def put(client, session_id, start_byte, chunk, header=True):
    headers = {"HTTP_CONTENT_RANGE": f"bytes {start_byte}-{start_byte + len(chunk) - 1}/{len(DATA)}"} if header else {}
    url = f"/api/v1/uploads/{session_id}/" + ("" if header else f"?offset={start_byte}")
    return client.put(url, chunk, content_type="application/octet-stream", **headers)


def test_chunked_upload_resumes_and_completes_into_a_version(member, sensors, settings, django_capture_on_commit_callbacks):
    client = api(member)
    session = start(client, sensors).json()
    size = 16_384
    chunks = [DATA[i : i + size] for i in range(0, len(DATA), size)]
    assert put(client, session["id"], 0, chunks[0]).json()["received_bytes"] == size
    # The connection broke: ask where to resume, then send the rest (once with ?offset=).
    assert client.get(f"/api/v1/uploads/{session['id']}/").json()["received_bytes"] == size
    wrong = put(client, session["id"], 0, chunks[0])
    assert wrong.status_code == 409 and wrong.json()["error"] == "wrong_offset" and str(size) in wrong.json()["detail"]
    for i, chunk in enumerate(chunks[1:], start=1):
        assert put(client, session["id"], i * size, chunk, header=i % 2 == 0).status_code == 200
    response = client.post(f"/api/v1/uploads/{session['id']}/complete/")
    assert response.status_code == 202, response.json()
    version = DatasetVersion.objects.get(pk=response.json()["id"])
    assert version.raw_sha256 == hashlib.sha256(DATA).hexdigest() and version.raw_bytes == len(DATA)
    assert get_storage().read_bytes(version.raw_sha256) == DATA
    # The chunk blobs are gone, the session says where its version is.
    session_row = UploadSession.objects.get(pk=session["id"])
    assert session_row.version == version
    assert not any(get_storage().exists(sha) for sha in session_row.chunks)
    again = client.post(f"/api/v1/uploads/{session['id']}/complete/")
    assert again.status_code == 409


def test_incomplete_upload_cannot_complete_and_chunks_cannot_pass_the_size(member, sensors):
    client = api(member)
    session = start(client, sensors, size=10).json()
    assert put(client, session["id"], 0, b"0123456789ABC").status_code == 400
    assert put(client, session["id"], 0, b"01234").status_code == 200
    response = client.post(f"/api/v1/uploads/{session['id']}/complete/")
    assert response.status_code == 409 and response.json()["error"] == "upload_incomplete"
    assert DatasetVersion.objects.count() == 0


def test_upload_over_the_size_limit_is_refused_at_the_start(member, sensors, settings):
    settings.LEPTON_MAX_UPLOAD_BYTES = 1000
    response = start(api(member), sensors, size=1001)
    assert response.status_code == 400 and response.json()["error"] == "too_large" and "size" in response.json()["fields"]
    assert UploadSession.objects.count() == 0


def test_chunk_over_the_chunk_limit_is_refused(member, sensors, settings):
    settings.LEPTON_MAX_CHUNK_BYTES = 100
    session = start(api(member), sensors).json()
    response = put(api(member), session["id"], 0, DATA[:101])
    assert response.status_code == 400 and response.json()["error"] == "chunk_too_large"


def test_missing_offset_is_400(member, sensors):
    session = start(api(member), sensors).json()
    response = api(member).put(f"/api/v1/uploads/{session['id']}/", b"abc", content_type="application/octet-stream")
    assert response.status_code == 400 and "offset" in response.json()["fields"]


def test_anonymous_and_outsider_and_other_members(member, owner, outsider, sensors):
    session = start(api(member), sensors).json()
    assert start(api(), sensors).status_code == 401
    assert start(api(outsider), sensors).status_code == 404
    for client, expected in ((api(), 401), (api(outsider), 404), (api(owner), 404)):
        assert client.get(f"/api/v1/uploads/{session['id']}/").status_code == expected
        assert put(client, session["id"], 0, DATA[:10]).status_code == expected
        assert client.post(f"/api/v1/uploads/{session['id']}/complete/").status_code == expected
    assert UploadSession.objects.get(pk=session["id"]).received_bytes == 0
