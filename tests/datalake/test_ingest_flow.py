"""Upload → ingest job on a real worker → published version (or a failed one that publishes nothing)."""

import io

import pytest

from datalake import services
from datalake.models import DatasetVersion
from lepton.models import AuditEvent
from tests.conftest import wait_for_job

GBK_CSV = "时间,机器,温度,结果\n2024年1月2日,M1,70.5,合格\n2024年1月3日,M2,71.25,不合格\n2024年1月4日,M1,,合格\n".encode(
    "gb18030"
)


@pytest.fixture
def inspections(member, production):
    return services.dataset_create(actor=member, department=production, name="Inspections")


def _ingest(member, dataset, data, filename="inspections.csv", options=None):
    version = services.dataset_upload(actor=member, dataset=dataset, stream=io.BytesIO(data), filename=filename, options=options)
    wait_for_job(version.job, timeout=60)
    version.refresh_from_db()
    return version


@pytest.mark.s3
def test_gbk_csv_with_chinese_headers_is_published_with_profile_and_checks(member, inspections, celery_worker, dispatcher):
    services.dataset_update(
        actor=member,
        dataset=inspections,
        checks=[
            {"type": "not_null", "column": "温度"},
            {"type": "allowed_values", "column": "结果", "values": ["合格", "不合格"], "blocking": True},
        ],
    )
    version = _ingest(member, inspections, GBK_CSV)
    assert version.status == "published", version.error_message
    assert (version.number, version.row_count) == (1, 3)
    assert [c["name"] for c in version.schema] == ["时间", "机器", "温度", "结果"]
    assert version.ingest_report["encoding"] == "gb18030"
    columns = {c["name"]: c for c in version.profile["columns"]}
    assert columns["温度"]["nulls"] == 1 and columns["温度"]["max"] == 71.25
    assert columns["时间"]["kind"] == "temporal"
    assert [r["passed"] for r in version.check_results] == [False, True]
    assert version.job.status == "succeeded" and version.job.result_ref == f"datalake.datasetversion:{version.pk}"
    assert AuditEvent.objects.filter(action="dataset.publish", object_id=str(inspections.pk)).exists()


def test_ragged_csv_fails_the_version_with_line_numbers_and_publishes_nothing(member, inspections, celery_worker, dispatcher):
    version = _ingest(member, inspections, b"a,b\n1,2\n3,4,5\n6,7\n", filename="ragged.csv")
    assert version.status == "failed" and version.number is None
    assert "3" in version.error_message  # the line number of the bad row
    assert version.job.status == "failed" and version.job.error_message == version.error_message
    assert not DatasetVersion.objects.filter(status="published").exists()


def test_skip_bad_lines_option_publishes_and_counts_them(member, inspections, celery_worker, dispatcher):
    version = _ingest(member, inspections, b"a,b\n1,2\n3,4,5\n6,7\n", filename="ragged.csv", options={"skip_bad_lines": True})
    assert version.status == "published" and version.row_count == 2
    assert version.ingest_report["skipped_lines"] == 1


def test_blocking_check_failure_stops_publication_with_the_reason(member, inspections, celery_worker, dispatcher):
    services.dataset_update(
        actor=member,
        dataset=inspections,
        checks=[{"type": "allowed_values", "column": "结果", "values": ["合格"], "blocking": True}],
    )
    version = _ingest(member, inspections, GBK_CSV)
    assert version.status == "failed"
    assert version.error_message.startswith("Blocking quality checks failed: 结果: 1 value is not allowed")
    assert version.check_results and version.number is None


def test_versions_are_numbered_in_order_of_publication(member, inspections, celery_worker, dispatcher):
    first = _ingest(member, inspections, b"a\n1\n", filename="one.csv")
    second = _ingest(member, inspections, b"a\n1\n2\n", filename="two.csv")
    assert (first.number, second.number) == (1, 2)


def test_unknown_option_is_refused_at_upload(member, inspections):
    from lepton.errors import Invalid

    with pytest.raises(Invalid) as err:
        services.dataset_upload(
            actor=member, dataset=inspections, stream=io.BytesIO(b"a\n1\n"), filename="a.csv", options={"temp_dir": "/etc"}
        )
    assert "options" in err.value.fields
    assert DatasetVersion.objects.count() == 0


def test_ingest_of_a_finished_version_is_a_no_op(member, inspections):
    version = services.dataset_upload(actor=member, dataset=inspections, stream=io.BytesIO(b"a\n1\n"), filename="a.csv")
    DatasetVersion.objects.filter(pk=version.pk).update(status="failed", error_message="earlier failure")
    assert services.version_ingest(version.pk).error_message == "earlier failure"
