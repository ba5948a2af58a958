"""Maintenance demo data: multi-machine sensor series with degradation, failures and repairs."""

import numpy as np
import pandas as pd

DEFAULT_SEED = 20240301

# (rated rpm, base vibration mm/s, temperature rise °C at full load, rated current A, pressure bar)
_PROFILES = [
    (1480.0, 1.6, 28.0, 32.0, 6.0),
    (2960.0, 2.2, 34.0, 18.0, 4.5),
    (1800.0, 1.3, 25.0, 45.0, 7.5),
    (3600.0, 2.6, 38.0, 12.0, 3.8),
    (1200.0, 1.1, 22.0, 55.0, 8.0),
    (2400.0, 1.9, 31.0, 24.0, 5.2),
]

STATUSES = ("running", "idle", "failure", "maintenance")


def _lag(signal: np.ndarray, steps: float) -> np.ndarray:
    """First-order thermal lag (time constant `steps` samples) as a truncated exponential kernel."""
    if steps < 0.5:
        return signal
    length = int(min(len(signal), max(3, 5 * steps)))
    kernel = np.exp(-np.arange(length) / steps)
    kernel /= kernel.sum()
    padded = np.concatenate([np.full(length - 1, signal[0]), signal])
    return np.convolve(padded, kernel, mode="valid")


def _machine_events(rng: np.random.Generator, n: int, per_hour: float) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Status codes (index into STATUSES), health loss 0..1 and failure-start indices for one machine."""
    status = np.zeros(n, dtype=np.int8)
    health = np.zeros(n)
    failures: list[int] = []
    h = per_hour
    t = int(rng.uniform(1, 4) * 24 * h)  # first degradation starts 1–4 days in
    while True:
        t += int(rng.exponential(7.0) * 24 * h)  # healthy run time, mean 7 days
        # A planned preventive maintenance sometimes comes first and restarts the clock.
        if rng.random() < 0.3:
            planned = int(rng.uniform(1.5, 3.0) * h)
            if t + planned >= n:
                break
            status[t : t + planned] = 3
            t += planned + int(rng.uniform(1, 3) * 24 * h)
        ramp = max(2, int(rng.uniform(10, 40) * h))  # degradation visible for 10–40 hours
        fail_at = t + ramp
        if fail_at >= n:
            break
        x = np.linspace(0.0, 1.0, ramp, endpoint=False)
        health[t:fail_at] = x ** rng.uniform(1.4, 2.6)
        down = max(1, int(rng.uniform(2, 8) * h))  # stopped until a technician arrives
        repair = max(1, int(rng.uniform(1, 4) * h))  # repair; the machine comes back as new
        status[fail_at : fail_at + down] = 2
        status[fail_at + down : fail_at + down + repair] = 3
        failures.append(fail_at)
        t = fail_at + down + repair
        if t >= n:
            break
    # Idle blocks (no orders) on a few days, only while the machine is healthy and running.
    days = n / (24 * h)
    for _ in range(rng.poisson(days * 0.25)):
        start = int(rng.uniform(0, n))
        stop = min(n, start + int(rng.uniform(1, 4) * h))
        if np.all(status[start:stop] == 0) and np.all(health[start:stop] == 0):
            status[start:stop] = 1
    return status, health, failures


def maintenance_sensors(
    seed: int = DEFAULT_SEED,
    *,
    machines: int = 6,
    days: float = 30,
    freq_seconds: int = 60,
    start: str = "2024-03-01",
    missing_rate: float = 0.003,
    spike_rate: float = 0.0003,
) -> pd.DataFrame:
    """Sensor log of `machines` machines sampled every `freq_seconds` over `days` days.

    Default: 6 machines × 30 days × 1 per minute = 259 200 rows, ordered by timestamp then machine.
    Each machine runs, now and then idles, and fails a few times a month after a 10–40 hour
    degradation (vibration, temperature and current creep up, rpm gets unsteady); a failure stops it
    for 2–8 h, a repair (status `maintenance`, also planned preventive stops) makes it as new.
    About 0.3 % of readings are missing, a few are sensor spikes, and short dropouts blank all sensors.

    Columns:
    - timestamp (datetime64): reading time, naive local time.
    - machine_id (str): `M01`, `M02`, ….
    - vibration (float, mm/s RMS): ~1–4 healthy, up to ~10 before a failure; ~0.1 when stopped.
    - temperature (float, °C): bearing temperature, ambient ~22 plus load heat, lagged.
    - current (float, A): motor current, ~0.3 A standby when stopped.
    - rpm (float, 1/min): spindle speed, 0 when stopped.
    - pressure (float, bar): hydraulic / line pressure, ~0.2 when stopped.
    - status (str): running | idle | failure | maintenance.
    - failure_within_24h (int8, 0/1): 1 when a failure starts in the next 24 h (strictly after this
      reading) and the machine is not already failed or in maintenance — the label to predict.
    """
    rng_global = np.random.default_rng([seed, 0])
    per_hour = 3600 / freq_seconds
    n = int(round(days * 24 * per_hour))
    step_h = freq_seconds / 3600
    hours = np.arange(n) * step_h
    columns = {name: np.empty((n, machines)) for name in ("vibration", "temperature", "current", "rpm", "pressure")}
    status_all = np.empty((n, machines), dtype=np.int8)
    label_all = np.zeros((n, machines), dtype=np.int8)
    # Ambient temperature of the hall: daily cycle plus a slow weather drift shared by all machines.
    ambient = 22 + 3 * np.sin(2 * np.pi * (hours - 9) / 24) + np.cumsum(rng_global.normal(0, 0.02 * np.sqrt(step_h), n))

    for m in range(machines):
        rng = np.random.default_rng([seed, 1, m])
        rpm_nom, vib0, rise, cur_nom, p_nom = _PROFILES[m % len(_PROFILES)]
        rpm_nom *= rng.uniform(0.97, 1.03)
        status, health, failures = _machine_events(rng, n, per_hour)
        on = status == 0
        # Load follows the day (two shifts busier than the night) with a slow random wander.
        wander = _lag(rng.normal(0, 1, n), 30 * per_hour / 60) * 0.5
        load = np.clip(0.75 + 0.12 * np.sin(2 * np.pi * (hours - 6) / 24) + 0.08 * wander, 0.3, 1.0) * on
        d = health

        rpm = rpm_nom * (0.97 + 0.03 * load) * (1 - 0.04 * d) + rng.normal(0, 1, n) * rpm_nom * 0.004 * (1 + 5 * d)
        vib = vib0 * (0.6 + 0.5 * load) + 6.0 * d**1.5 + rng.normal(0, 1, n) * 0.08 * (1 + 4 * d)
        target_temp = ambient + rise * load + 24 * d
        temp = _lag(target_temp, 20 * per_hour / 60) + rng.normal(0, 0.25, n)
        cur = cur_nom * (0.25 + 0.75 * load) * (1 + 0.15 * d) + rng.normal(0, 0.02 * cur_nom, n)
        pres = p_nom * (0.9 + 0.1 * load) - 0.9 * d * p_nom / 6 + rng.normal(0, 0.05, n)

        off = ~on
        rpm[off] = 0.0
        vib[off] = np.abs(rng.normal(0.1, 0.04, off.sum()))
        cur[off] = np.abs(rng.normal(0.3, 0.08, off.sum()))
        pres[off] = np.abs(rng.normal(0.2, 0.05, off.sum()))

        # Sensor glitches: single readings several times too high (vibration, current) or far off (temperature).
        for values, factor in ((vib, 5.0), (cur, 2.5)):
            hit = rng.random(n) < spike_rate
            values[hit] *= factor * rng.uniform(1, 2, hit.sum())
        hit = rng.random(n) < spike_rate
        temp[hit] += rng.uniform(60, 120, hit.sum())

        # Label: the next failure start strictly after each reading is at most 24 h away.
        starts = np.asarray(failures, dtype=np.int64)
        idx = np.arange(n)
        if len(starts):
            nxt = np.searchsorted(starts, idx, side="right")
            has_next = nxt < len(starts)
            gap = np.where(has_next, starts[np.minimum(nxt, len(starts) - 1)] - idx, n)
            label_all[:, m] = (has_next & (gap * step_h <= 24) & (status <= 1)).astype(np.int8)

        stack = {"vibration": vib, "temperature": temp, "current": cur, "rpm": rpm, "pressure": pres}
        dropout = np.zeros(n, dtype=bool)
        for _ in range(rng.poisson(days / 5)):
            s = int(rng.uniform(0, n))
            dropout[s : s + max(1, int(rng.uniform(5, 30) / 60 * per_hour))] = True
        for name, values in stack.items():
            values[(rng.random(n) < missing_rate) | dropout] = np.nan
            columns[name][:, m] = values
        status_all[:, m] = status

    timestamps = pd.date_range(start, periods=n, freq=f"{freq_seconds}s")
    names = np.array([f"M{m + 1:02d}" for m in range(machines)])
    frame = pd.DataFrame(
        {
            "timestamp": np.repeat(timestamps.values, machines),
            "machine_id": np.tile(names, n),
            "vibration": columns["vibration"].ravel().round(3),
            "temperature": columns["temperature"].ravel().round(2),
            "current": columns["current"].ravel().round(2),
            "rpm": columns["rpm"].ravel().round(1),
            "pressure": columns["pressure"].ravel().round(3),
            "status": np.array(STATUSES)[status_all.ravel()],
            "failure_within_24h": label_all.ravel(),
        }
    )
    return frame
