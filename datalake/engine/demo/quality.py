"""Quality demo data: inspection records whose pass/fail depends non-linearly on the process."""

import numpy as np
import pandas as pd

from .maintenance import DEFAULT_SEED

SHIFTS = ("morning", "afternoon", "night")


def quality_inspections(
    seed: int = DEFAULT_SEED,
    *,
    rows: int = 8000,
    start: str = "2024-01-02",
    missing_rate: float = 0.015,
    duplicate_rate: float = 0.005,
) -> pd.DataFrame:
    """Inspection records of injection-moulded parts on three lines, one row per inspected part.

    The failure risk is non-linear: the melt temperature has an optimal window that narrows when the
    air is humid, high line speed needs high pressure, two material batches in ten are poor, the
    night shift and two new operators fail more. About 25–30 % of the parts fail, with noise, so a
    random forest or an RBF SVM does clearly better than always answering "pass".
    About `missing_rate` of the process values (and of operators) are missing and `duplicate_rate`
    of the rows are exact duplicates (a record submitted twice), next to their original.

    Columns:
    - inspection_id (str): `QI-000001`, … (duplicated rows repeat it).
    - inspected_at (datetime64): inspection time, 15 minutes apart on average (sampling).
    - line (str): production line `L1`–`L3`.
    - shift (str): morning (06–14) | afternoon (14–22) | night (22–06), from inspected_at.
    - operator (str): `OP01`–`OP12`, sometimes missing.
    - material_batch (str): resin batch such as `B2401-003` (month of first use, sequence), a new batch every ~200 inspections.
    - temperature (float, °C): melt temperature, ~195–235, optimum ~215.
    - humidity (float, %RH): hall humidity, ~30–85.
    - pressure (float, MPa): injection pressure, ~60–120.
    - line_speed (float, parts/min): ~8–20.
    - result (str): pass | fail.
    """
    rng = np.random.default_rng([seed, 2])
    n_dup = int(round(rows * duplicate_rate))
    n = rows - n_dup
    gaps = rng.exponential(900.0, n)  # seconds between sampled inspections
    at = pd.Timestamp(start) + pd.to_timedelta(np.cumsum(gaps).round(), unit="s")
    hour = at.hour.to_numpy()
    shift_idx = np.where((hour >= 6) & (hour < 14), 0, np.where((hour >= 14) & (hour < 22), 1, 2))

    line = rng.integers(0, 3, n)
    operator = rng.integers(0, 12, n)
    # Batches change every ~200 inspections; a batch's quality is drawn once.
    batch_no = np.cumsum(rng.random(n) < 1 / 200)
    n_batches = batch_no.max() + 1
    batch_bad = rng.random(n_batches) < 0.2
    first = np.searchsorted(batch_no, np.arange(n_batches))
    labels = [f"B{month}-{b + 1:03d}" for b, month in enumerate(at[first].strftime("%y%m"))]
    batch_name = np.array(labels)[batch_no]

    day = (at - at[0]).total_seconds().to_numpy() / 86400
    humidity = 55 + 15 * np.sin(2 * np.pi * day / 45) + 6 * np.sin(2 * np.pi * hour / 24) + rng.normal(0, 6, n)
    humidity = np.clip(humidity, 25, 92)
    temperature = rng.normal(215, 8, n) + np.array([0.0, 2.0, -2.0])[line]
    speed = np.clip(rng.normal(14, 3, n), 6, 22)
    pressure = np.clip(rng.normal(88, 13, n) + 1.2 * (speed - 14), 50, 130)

    # Risk score (logit), every term a plausible process rule.
    window = 9.0 - 0.08 * np.clip(humidity - 55, 0, None)  # humid air narrows the window
    temp_term = ((temperature - 215) / window) ** 2
    fill_term = np.clip((speed * 6.3 - pressure - 8) / 8, 0, None) ** 2  # too fast for the pressure: short shots
    logit = (
        -4.6
        + 1.6 * temp_term
        + 1.4 * fill_term
        + 1.6 * batch_bad[batch_no] * (humidity > 60)  # a poor batch only shows when it absorbs moisture
        + 0.5 * (shift_idx == 2)
        + 0.6 * np.isin(operator, (4, 9))
        + 0.4 * (pressure > 115)  # flash
    )
    fail = rng.random(n) < 1 / (1 + np.exp(-logit))

    frame = pd.DataFrame(
        {
            "inspection_id": [f"QI-{i + 1:06d}" for i in range(n)],
            "inspected_at": at.as_unit("s"),
            "line": np.array(["L1", "L2", "L3"])[line],
            "shift": np.array(SHIFTS)[shift_idx],
            "operator": pd.array([f"OP{o + 1:02d}" for o in operator], dtype="str"),
            "material_batch": batch_name,
            "temperature": temperature.round(1),
            "humidity": humidity.round(1),
            "pressure": pressure.round(1),
            "line_speed": speed.round(2),
            "result": np.where(fail, "fail", "pass"),
        }
    )
    for name in ("temperature", "humidity", "pressure", "line_speed", "operator"):
        frame.loc[rng.random(n) < missing_rate, name] = np.nan
    if n_dup:
        picks = np.sort(rng.choice(n, n_dup, replace=False))
        order = np.sort(np.concatenate([np.arange(n), picks]), kind="stable")
        frame = frame.iloc[order].reset_index(drop=True)
    return frame
