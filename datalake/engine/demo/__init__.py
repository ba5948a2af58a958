"""Demo data for every department, generated deterministically from a seed (no Django import).

Realistic enough to show the data lake and to train the models of the model repository on:

- maintenance_sensors: sensor series of several machines with degradation, failures and a
  `failure_within_24h` label (windows for an LSTM / 1D-CNN);
- quality_inspections: process parameters with a non-linear pass/fail (SVM, random forest),
  missing values and duplicates for the cleaning recipes;
- part_images / write_part_images_zip: grayscale part images, OK or scratched, spotted, cracked
  (a 2D CNN), as arrays or as a zip of PNG files in one folder per class;
- supply_demand: daily demand per product with trend, seasons, holidays, promotions, stock-outs;
- service_tickets: Chinese and English ticket texts with categories and priorities (TF-IDF);
- write_gbk_csv: any of them as a GB18030 CSV with Chinese headers (the Windows export path);
- write_demo_files: all of them into a folder, each in a different ingest format.

The same seed and arguments always give the same output (numpy Generators seeded per part).
"""

import os
from pathlib import Path

from ._png import png_bytes
from .gbk import COLUMN_NAMES_ZH, VALUE_NAMES_ZH, write_gbk_csv
from .images import IMAGE_CLASSES, part_images, write_part_images_zip
from .maintenance import DEFAULT_SEED, STATUSES, maintenance_sensors
from .quality import quality_inspections
from .service import PRIORITIES, TICKET_CATEGORIES, service_tickets
from .supply import PRODUCTS, supply_demand

__all__ = [
    "COLUMN_NAMES_ZH",
    "DEFAULT_SEED",
    "IMAGE_CLASSES",
    "PRIORITIES",
    "PRODUCTS",
    "STATUSES",
    "TICKET_CATEGORIES",
    "VALUE_NAMES_ZH",
    "maintenance_sensors",
    "part_images",
    "png_bytes",
    "quality_inspections",
    "service_tickets",
    "supply_demand",
    "write_demo_files",
    "write_gbk_csv",
    "write_part_images_zip",
]


def write_demo_files(directory: str | os.PathLike, seed: int = DEFAULT_SEED) -> dict[str, Path]:
    """Write every demo dataset into `directory` (created if needed), one ingest format each.

    Returns {key: path}: `maintenance_sensors` (UTF-8 CSV), `quality_inspections` (GB18030 CSV with
    Chinese headers and values), `part_images` (zip, one folder per class, 48×48 PNG),
    `supply_demand` (Parquet), `service_tickets` (JSON Lines, UTF-8, Chinese kept as is).
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "maintenance_sensors": folder / "maintenance_sensors.csv",
        "quality_inspections": folder / "quality_inspections_gbk.csv",
        "part_images": folder / "part_images.zip",
        "supply_demand": folder / "supply_demand.parquet",
        "service_tickets": folder / "service_tickets.jsonl",
    }
    maintenance_sensors(seed).to_csv(paths["maintenance_sensors"], index=False)
    write_gbk_csv(quality_inspections(seed), paths["quality_inspections"])
    write_part_images_zip(paths["part_images"], seed)
    supply_demand(seed).to_parquet(paths["supply_demand"], index=False, compression="zstd")
    service_tickets(seed).to_json(paths["service_tickets"], orient="records", lines=True, force_ascii=False, date_format="iso")
    return paths
