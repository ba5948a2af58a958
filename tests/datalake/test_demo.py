"""Demo data generators: deterministic, realistic in shape and range, and learnable (no database)."""

import io
import struct
import zipfile
import zlib

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score, train_test_split

from datalake.engine.demo import (
    IMAGE_CLASSES,
    PRIORITIES,
    STATUSES,
    TICKET_CATEGORIES,
    maintenance_sensors,
    part_images,
    png_bytes,
    quality_inspections,
    service_tickets,
    supply_demand,
    write_demo_files,
    write_gbk_csv,
    write_part_images_zip,
)

SENSORS = ["vibration", "temperature", "current", "rpm", "pressure"]


def decode_png(data: bytes) -> np.ndarray:
    """Just enough of a PNG decoder to check ours: signature, IHDR, IDAT size, filter-0 rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    assert list(chunks)[-1] == b"IEND"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour, interlace) == (8, 0, 0)  # 8-bit grayscale, not interlaced
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == height * (width + 1)
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, width + 1)
    assert (rows[:, 0] == 0).all()  # filter type None on every row
    return rows[:, 1:]


@pytest.fixture(scope="module")
def sensors():
    return maintenance_sensors()


@pytest.fixture(scope="module")
def inspections():
    return quality_inspections()


@pytest.fixture(scope="module")
def demand():
    return supply_demand()


@pytest.fixture(scope="module")
def tickets():
    return service_tickets()


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "generate",
    [
        lambda seed: maintenance_sensors(seed, machines=2, days=3),
        lambda seed: quality_inspections(seed, rows=2000),
        lambda seed: supply_demand(seed, days=120, products=3),
        lambda seed: service_tickets(seed, rows=500),
    ],
    ids=["sensors", "inspections", "demand", "tickets"],
)
def test_same_seed_gives_identical_frames_and_another_seed_differs(generate):
    pd.testing.assert_frame_equal(generate(1), generate(1))
    assert not generate(1).equals(generate(2))


def test_same_seed_gives_identical_images_and_zip_bytes():
    a, labels_a = part_images(5, per_class=10)
    b, labels_b = part_images(5, per_class=10)
    assert np.array_equal(a, b) and np.array_equal(labels_a, labels_b)
    assert not np.array_equal(a, part_images(6, per_class=10)[0])
    first, second = io.BytesIO(), io.BytesIO()
    write_part_images_zip(first, 5, per_class=5)
    write_part_images_zip(second, 5, per_class=5)
    assert first.getvalue() == second.getvalue()


# --- maintenance sensors -----------------------------------------------------------------------


def test_sensor_frame_has_the_documented_columns_types_and_size(sensors):
    assert sensors.shape == (6 * 30 * 1440, 9)
    assert list(sensors.columns) == ["timestamp", "machine_id", *SENSORS, "status", "failure_within_24h"]
    assert pd.api.types.is_datetime64_any_dtype(sensors["timestamp"])
    assert all(sensors[c].dtype == np.float64 for c in SENSORS)
    assert pd.api.types.is_string_dtype(sensors["machine_id"]) and pd.api.types.is_string_dtype(sensors["status"])
    assert sorted(sensors["machine_id"].unique()) == [f"M0{i}" for i in range(1, 7)]
    assert set(sensors["status"].unique()) == set(STATUSES)
    assert set(sensors["failure_within_24h"].unique()) == {0, 1}
    # One reading per machine and minute, in time order.
    assert not sensors.duplicated(["timestamp", "machine_id"]).any()
    assert sensors["timestamp"].is_monotonic_increasing


def test_sensor_scale_parameters_change_the_size():
    small = maintenance_sensors(machines=2, days=2, freq_seconds=600)
    assert small.shape == (2 * 2 * 144, 9)
    assert (small["timestamp"].diff().dropna().isin([pd.Timedelta(0), pd.Timedelta(minutes=10)])).all()


def test_sensor_values_are_physical_with_some_missing_values_and_spikes(sensors):
    running = sensors[sensors["status"] == "running"]
    stopped = sensors[sensors["status"].isin(["failure", "maintenance", "idle"])]
    assert running["rpm"].dropna().between(1000, 4000).all()
    assert (stopped["rpm"].dropna() == 0).all()
    assert running["vibration"].median() == pytest.approx(2.0, abs=1.0)
    assert running["temperature"].quantile([0.01, 0.99]).between(15, 110).all()
    assert (sensors[SENSORS].dropna() >= 0).all().all()
    missing = sensors[SENSORS].isna().mean()
    assert ((missing > 0.001) & (missing < 0.02)).all()
    # Spikes: a few readings far above what a healthy or failing machine shows.
    assert sensors["temperature"].max() > 120
    assert (sensors["vibration"] > 12).sum() > 0


def _failure_starts(machine: pd.DataFrame) -> np.ndarray:
    failed = (machine["status"] == "failure").to_numpy()
    return np.flatnonzero(failed & ~np.r_[False, failed[:-1]])


def test_failures_exist_but_are_rare(sensors):
    starts = sum(len(_failure_starts(m)) for _, m in sensors.groupby("machine_id"))
    assert 6 <= starts <= 40
    assert 0.02 < sensors["failure_within_24h"].mean() < 0.2
    assert (sensors["status"] == "failure").mean() < 0.05


def test_label_marks_the_24_hours_before_each_failure_and_nothing_else(sensors):
    for _, machine in sensors.groupby("machine_id"):
        machine = machine.reset_index(drop=True)
        label = machine["failure_within_24h"].to_numpy()
        times = machine["timestamp"].to_numpy()
        starts = _failure_starts(machine)
        expected = np.zeros(len(machine), dtype=bool)
        for s in starts:
            window = (times >= times[s] - np.timedelta64(24, "h")) & (np.arange(len(machine)) < s)
            expected |= window
        expected &= machine["status"].isin(["running", "idle"]).to_numpy()
        assert np.array_equal(label.astype(bool), expected)
        # Failure rows themselves are not labelled: the label predicts, it does not describe.
        assert (label[machine["status"] == "failure"] == 0).all()


def test_machines_degrade_before_a_failure(sensors):
    rises = []
    for _, machine in sensors.groupby("machine_id"):
        machine = machine.reset_index(drop=True)
        normal = machine.loc[(machine["status"] == "running") & (machine["failure_within_24h"] == 0), "vibration"].median()
        for s in _failure_starts(machine):
            if s >= 180:
                rises.append(machine.loc[s - 180 : s - 1, "vibration"].median() / normal)
    assert rises and np.median(rises) > 2


def test_failure_label_is_predictable_from_a_sensor_window(sensors):
    ordered = sensors.sort_values(["machine_id", "timestamp"])
    rolling = ordered.groupby("machine_id")["vibration"].transform(lambda x: x.rolling(60, min_periods=10).median())
    per_machine = rolling.groupby(ordered["machine_id"]).transform(lambda x: (x - x.median()) / x.std())
    running = (ordered["status"] == "running") & per_machine.notna()
    auc = roc_auc_score(ordered.loc[running, "failure_within_24h"], per_machine[running])
    assert auc > 0.75  # one hour of vibration alone; the trend over longer windows adds more


# --- quality inspections -----------------------------------------------------------------------


def test_inspection_records_have_the_documented_columns_and_ranges(inspections):
    assert inspections.shape == (8000, 11)
    assert inspections["inspection_id"].str.match(r"^QI-\d{6}$").all()
    assert pd.api.types.is_datetime64_any_dtype(inspections["inspected_at"])
    assert set(inspections["shift"]) == {"morning", "afternoon", "night"}
    assert set(inspections["result"]) == {"pass", "fail"}
    assert inspections["temperature"].dropna().between(150, 280).all()
    assert inspections["humidity"].dropna().between(20, 95).all()
    assert inspections["pressure"].dropna().between(50, 130).all()
    assert inspections["line_speed"].dropna().between(6, 22).all()
    assert 0.15 < (inspections["result"] == "fail").mean() < 0.45
    # Night-shift labels follow the clock.
    hours = inspections.loc[inspections["shift"] == "night", "inspected_at"].dt.hour
    assert ((hours >= 22) | (hours < 6)).all()


def test_inspection_records_need_cleaning(inspections):
    for column in ("temperature", "humidity", "pressure", "line_speed", "operator"):
        assert 0.005 < inspections[column].isna().mean() < 0.05
    assert 20 <= inspections.duplicated().sum() <= 60
    assert inspections["inspection_id"].duplicated().sum() == inspections.duplicated().sum()


def test_pass_fail_is_learnable_by_a_random_forest(inspections):
    data = inspections.drop_duplicates()
    numeric = ["temperature", "humidity", "pressure", "line_speed"]
    features = data[numeric].fillna(data[numeric].median())
    features = features.join(pd.get_dummies(data[["shift", "operator", "line"]].fillna("unknown"), dtype=float))
    target = (data["result"] == "fail").to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(features, target, test_size=0.3, random_state=0, stratify=target)
    forest = RandomForestClassifier(n_estimators=100, min_samples_leaf=3, random_state=0).fit(x_train, y_train)
    baseline = max(y_test.mean(), 1 - y_test.mean())
    assert forest.score(x_test, y_test) > baseline + 0.08


# --- part images -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [28, 64])
def test_part_images_cover_every_class_and_differ(size):
    images, labels = part_images(per_class=12, size=size)
    assert images.shape == (48, size, size) and images.dtype == np.uint8
    assert {str(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True), strict=True)} == dict.fromkeys(
        IMAGE_CLASSES, 12
    )
    flat = images.reshape(len(images), -1)
    assert len(np.unique(flat, axis=0)) == len(images)
    # A bright part on a mid-grey belt; spots and cracks show darker than the belt, a scratch
    # brighter than the metal (the typical image of each class, so one odd image does not decide).
    darkest = {c: np.median(images[labels == c].min(axis=(1, 2))) for c in IMAGE_CLASSES}
    brightest = {c: np.median(images[labels == c].max(axis=(1, 2))) for c in IMAGE_CLASSES}
    assert darkest["ok"] > 60 and brightest["ok"] > 180, (darkest, brightest)
    assert max(darkest["spot"], darkest["crack"]) < darkest["ok"] - 20, darkest
    assert brightest["scratch"] > brightest["ok"] + 20, brightest


def test_defect_classes_are_learnable_from_position_free_features():
    images, labels = part_images(per_class=60)
    pixels = images.astype(float)
    laplace = 4 * pixels[:, 1:-1, 1:-1] - pixels[:, :-2, 1:-1] - pixels[:, 2:, 1:-1] - pixels[:, 1:-1, :-2] - pixels[:, 1:-1, 2:]
    # Quantiles of brightness and of edge strength: a thin bright scratch, a dark blob or a jagged
    # dark line each change them in their own way, wherever the defect lies.
    features = np.hstack(
        [
            np.quantile(pixels.reshape(len(images), -1), np.linspace(0, 1, 21), axis=1).T,
            np.quantile(laplace.reshape(len(images), -1), [0, 0.005, 0.01, 0.02, 0.05, 0.95, 0.98, 0.99, 0.995, 1], axis=1).T,
        ]
    )
    accuracy = cross_val_score(RandomForestClassifier(n_estimators=100, random_state=0), features, labels, cv=3).mean()
    assert accuracy > 0.7  # chance is 0.25; this generator gave 0.88–0.92 over three seeds


def test_part_image_size_is_checked():
    with pytest.raises(ValueError, match="between 16 and 256"):
        part_images(size=8)
    with pytest.raises(ValueError, match="unknown image classes"):
        part_images(classes=("ok", "dent"))


def test_image_zip_has_one_folder_per_class_of_decodable_pngs(tmp_path):
    target = tmp_path / "parts.zip"
    manifest = write_part_images_zip(target, per_class=6, size=28)
    images, labels = part_images(per_class=6, size=28)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        assert sorted({name.split("/")[0] for name in names}) == sorted(IMAGE_CLASSES)
        assert len(names) == 24
        for (path, label), image in zip(manifest[["path", "label"]].itertuples(index=False), images, strict=True):
            assert path.startswith(f"{label}/") and path.endswith(".png")
            assert np.array_equal(decode_png(archive.read(path)), image)
    assert list(manifest["label"]) == list(labels)
    assert (manifest["width"] == 28).all() and (manifest["height"] == 28).all()


def test_image_zip_with_a_labels_csv(tmp_path):
    target = tmp_path / "parts.zip"
    write_part_images_zip(target, per_class=3, layout="labels_csv")
    with zipfile.ZipFile(target) as archive:
        labels = pd.read_csv(io.BytesIO(archive.read("labels.csv")))
        assert len(labels) == 12 and set(labels["label"]) == set(IMAGE_CLASSES)
        assert all(decode_png(archive.read(p)).shape == (48, 48) for p in labels["path"])
    with pytest.raises(ValueError, match="layout"):
        write_part_images_zip(io.BytesIO(), layout="tree")


def test_png_encoder_round_trips_an_odd_sized_gradient():
    image = (np.arange(7 * 13).reshape(7, 13) * 2).astype(np.uint8)
    assert np.array_equal(decode_png(png_bytes(image)), image)
    with pytest.raises(ValueError, match="2-D"):
        png_bytes(np.zeros((2, 2, 3), dtype=np.uint8))


# --- supply chain demand -----------------------------------------------------------------------


def test_demand_frame_has_the_documented_columns_and_size(demand):
    assert demand.shape == (12 * 730, 9)
    assert pd.api.types.is_datetime64_any_dtype(demand["date"])
    assert demand["units_sold"].dtype == np.int64 and (demand["units_sold"] >= 0).all()
    assert demand["promotion"].dtype == bool and demand["stockout"].dtype == bool
    assert (demand["price"] > 0).all()
    assert set(demand["holiday"].dropna()) == {"元旦", "春节", "劳动节", "国庆节"}
    assert 0.05 < demand["promotion"].mean() < 0.25
    assert 0.005 < demand["stockout"].mean() < 0.08


def test_demand_shows_weekly_seasonality_holidays_promotions_and_stockouts(demand):
    ordinary = demand[demand["holiday"].isna() & ~demand["promotion"] & ~demand["stockout"]]
    level = ordinary.groupby("product_id")["units_sold"].mean()

    def relative(rows: pd.DataFrame) -> float:
        return float((rows.groupby("product_id")["units_sold"].mean() / level).median())

    weekend = ordinary["date"].dt.day_of_week >= 5
    assert relative(ordinary[weekend]) < 0.6 * relative(ordinary[~weekend])
    assert relative(demand[demand["holiday"] == "春节"]) < 0.4
    assert relative(demand[demand["promotion"] & ~demand["stockout"] & demand["holiday"].isna()]) > 1.2
    assert relative(demand[demand["stockout"]]) < 0.5
    # Promotions cut the price.
    promo_price = demand[demand["promotion"]].groupby("product_id")["price"].mean()
    assert (promo_price < demand[~demand["promotion"]].groupby("product_id")["price"].mean()[promo_price.index]).all()


# --- customer service tickets ------------------------------------------------------------------


def test_tickets_have_the_documented_columns_and_values(tickets):
    assert tickets.shape == (3000, 10)
    assert set(tickets["category"]) == set(TICKET_CATEGORIES)
    assert set(tickets["priority"]) == set(PRIORITIES)
    assert set(tickets["language"]) == {"zh", "en"}
    assert tickets["created_at"].is_monotonic_increasing
    chinese = tickets.loc[tickets["language"] == "zh", "text"]
    assert chinese.str.contains(r"[\u4e00-\u9fff]").all()
    assert not tickets.loc[tickets["language"] == "en", "text"].str.contains(r"[\u4e00-\u9fff]").any()
    hours = tickets["resolution_hours"]
    assert (hours.dropna() > 0).all() and 0.01 < hours.isna().mean() < 0.1
    # Urgent tickets are resolved faster than low-priority ones.
    by_priority = tickets.groupby("priority")["resolution_hours"].median()
    assert by_priority["urgent"] < by_priority["low"]


def test_ticket_category_is_learnable_from_the_text(tickets):
    x_train, x_test, y_train, y_test = train_test_split(tickets["text"], tickets["category"], random_state=0)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 2), min_df=2).fit(x_train)
    model = LogisticRegression(max_iter=1000).fit(vectorizer.transform(x_train), y_train)
    assert model.score(vectorizer.transform(x_test), y_test) > 0.85


# --- GBK CSV -----------------------------------------------------------------------------------


def test_gbk_csv_round_trips_with_chinese_headers(tmp_path, inspections):
    target = tmp_path / "质检记录.csv"
    headers = write_gbk_csv(inspections, target)
    assert headers[6:] == ["温度", "湿度", "压力", "线速度", "结果"]
    raw = target.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert raw.count(b"\r\n") == len(inspections) + 1
    for encoding in ("gb18030", "gbk"):
        back = pd.read_csv(target, encoding=encoding)
        assert list(back.columns) == headers
        assert len(back) == len(inspections)
    assert set(back["结果"]) == {"合格", "不合格"}
    assert set(back["班次"]) == {"早班", "中班", "夜班"}
    for column, header in (("temperature", "温度"), ("humidity", "湿度"), ("pressure", "压力")):
        pd.testing.assert_series_equal(back[header], inspections[column], check_names=False)
    assert back["检验时间"].str.match(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}$").all()


def test_gbk_csv_with_own_headers_and_untranslated_values(tmp_path, demand):
    target = tmp_path / "demand.csv"
    headers = write_gbk_csv(demand.head(50), target, headers={"units_sold": "销售数量"}, translate_values=False)
    assert headers == [*demand.columns[:-1], "销售数量"]
    back = pd.read_csv(target, encoding="gb18030")
    assert back["date"].iloc[0] == "2023/01/01"  # whole days are written without a time
    assert back["product_name"].iloc[0] == demand["product_name"].iloc[0]
    with pytest.raises(ValueError, match="share a name"):
        write_gbk_csv(demand.head(), tmp_path / "bad.csv", headers={"price": "x", "units_sold": "x"})


def test_write_demo_files_writes_every_dataset(tmp_path):
    paths = write_demo_files(tmp_path / "demo")
    assert all(path.exists() and path.stat().st_size > 0 for path in paths.values())
    assert len(pd.read_parquet(paths["supply_demand"])) == 12 * 730
    assert len(pd.read_json(paths["service_tickets"], lines=True)) == 3000
    assert "温度" in pd.read_csv(paths["quality_inspections"], encoding="gb18030", nrows=1).columns
    with zipfile.ZipFile(paths["part_images"]) as archive:
        assert len(archive.namelist()) == 4 * 100
