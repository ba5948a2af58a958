"""Supply Chain demo data: daily demand per product with seasons, holidays, promotions and stock-outs."""

import numpy as np
import pandas as pd

from .maintenance import DEFAULT_SEED

# (product_id, name, category, base units/day, list price CNY)
PRODUCTS = [
    ("P001", "深沟球轴承 6205", "bearings", 220, 18.5),
    ("P002", "圆锥滚子轴承 30208", "bearings", 90, 46.0),
    ("P003", "直线导轨 HGR20", "motion", 35, 380.0),
    ("P004", "滚珠丝杠 SFU1605", "motion", 28, 520.0),
    ("P005", "伺服电机 750W", "motors", 14, 1650.0),
    ("P006", "步进电机 57HS", "motors", 40, 145.0),
    ("P007", "变频器 2.2kW", "drives", 11, 1280.0),
    ("P008", "PLC 控制器 S7-200", "drives", 8, 2350.0),
    ("P009", "液压油缸 63/100", "hydraulics", 16, 890.0),
    ("P010", "齿轮泵 CBN-E", "hydraulics", 22, 430.0),
    ("P011", "O型密封圈套装", "consumables", 300, 12.0),
    ("P012", "工业润滑脂 1kg", "consumables", 160, 38.0),
]

# Spring Festival (Chinese New Year's day); factories close for about a week around it.
_SPRING_FESTIVAL = {
    2022: "2022-02-01",
    2023: "2023-01-22",
    2024: "2024-02-10",
    2025: "2025-01-29",
    2026: "2026-02-17",
    2027: "2027-02-06",
}


def _holidays(dates: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Holiday name per day (None on a working day) and a demand multiplier."""
    names = np.full(len(dates), None, dtype=object)
    factor = np.ones(len(dates))
    for year in sorted(set(dates.year)):
        if year in _SPRING_FESTIVAL:
            day0 = pd.Timestamp(_SPRING_FESTIVAL[year])
            offset = (dates - day0).days.to_numpy()
            before = (offset >= -14) & (offset < -1)
            factor[before] *= 1.25  # customers stock up before the break
            closed = (offset >= -1) & (offset <= 6)
            names[closed] = "春节"
            factor[closed] *= 0.15
            restart = (offset > 6) & (offset <= 14)
            factor[restart] *= 0.6  # workers come back slowly
        for month, first, last, name, mult in ((5, 1, 5, "劳动节", 0.55), (10, 1, 7, "国庆节", 0.4)):
            hit = (dates.year == year) & (dates.month == month) & (dates.day >= first) & (dates.day <= last)
            names[hit] = name
            factor[hit] *= mult
        newyear = (dates.year == year) & (dates.month == 1) & (dates.day == 1)
        names[newyear] = "元旦"
        factor[newyear] *= 0.5
    return names, factor


def supply_demand(seed: int = DEFAULT_SEED, *, start: str = "2023-01-01", days: int = 730, products: int = 12) -> pd.DataFrame:
    """Daily sales of `products` industrial spare parts (at most 12) over `days` days.

    Default 12 products × 730 days = 8 760 rows, ordered by date then product. True demand is a
    product level × yearly trend × weekly pattern (weekends ~40 % of weekdays) × yearly season
    (spring and autumn busy, August and the year end quiet) × holidays (Spring Festival closes
    factories for a week after a stock-up, Labour Day, National Day) × promotions (price cut
    10–25 % for 3–10 days, with a price-elastic uplift plus a campaign boost), with over-dispersed
    noise. On stock-out days sales fall to a fraction of demand. Prices rise a few percent a year.

    Columns:
    - date (datetime64, day).
    - product_id (str): `P001`…; product_name (str, Chinese); category (str).
    - price (float, CNY per unit): the selling price that day (discounted during a promotion).
    - promotion (bool): a promotion runs that day.
    - holiday (str, missing on working days): 元旦 | 春节 | 劳动节 | 国庆节.
    - stockout (bool): the product was out of stock for (part of) the day.
    - units_sold (int64, units): sales that day — what a forecaster learns from.
    """
    if not 1 <= products <= len(PRODUCTS):
        raise ValueError(f"products must be between 1 and {len(PRODUCTS)}, got {products}")
    dates = pd.date_range(start, periods=days, freq="D")
    holiday, holiday_factor = _holidays(dates)
    t_years = np.arange(days) / 365.25
    doy = dates.day_of_year.to_numpy()
    weekday = dates.day_of_week.to_numpy()
    frames = []
    for p in range(products):
        pid, name, category, base, list_price = PRODUCTS[p]
        rng = np.random.default_rng([seed, 4, p])
        trend = (1 + rng.uniform(-0.08, 0.3)) ** t_years
        weekly = np.array([1.05, 1.1, 1.1, 1.05, 1.0, 0.45, 0.35])[weekday] * rng.uniform(0.95, 1.05, 7)[weekday]
        amp = rng.uniform(0.1, 0.25)
        season = 1 + amp * np.sin(2 * np.pi * (doy - 60) / 182.6) - 0.5 * amp * np.exp(-(((doy - 225) / 12) ** 2))
        # Price: yearly increases on 1 January, promotions cut it.
        price = list_price * (1 + rng.uniform(0.02, 0.05)) ** (dates.year.to_numpy() - dates.year[0])
        promo = np.zeros(days, dtype=bool)
        discount = np.zeros(days)
        t = int(rng.integers(5, 40))
        while t < days:
            length = int(rng.integers(3, 11))
            promo[t : t + length] = True
            discount[t : t + length] = rng.choice([0.1, 0.15, 0.2, 0.25])
            t += length + int(rng.integers(25, 70))
        promo &= holiday_factor > 0.3  # no campaign while factories are closed
        discount[~promo] = 0
        price = np.round(price * (1 - discount), 2)
        elasticity = rng.uniform(0.8, 1.8)
        uplift = (1 - discount) ** -elasticity * np.where(promo, rng.uniform(1.1, 1.3), 1.0)

        mean = base * trend * weekly * season * holiday_factor * uplift
        demand = rng.poisson(mean * rng.gamma(8.0, 1 / 8.0, days))  # gamma-Poisson: over-dispersed counts

        stockout = np.zeros(days, dtype=bool)
        for _ in range(rng.poisson(days / 365 * 3)):
            s = int(rng.integers(0, days))
            stockout[s : s + int(rng.integers(1, 7))] = True
        sold = np.where(stockout, rng.binomial(demand, rng.uniform(0.0, 0.35, days)), demand)

        frames.append(
            pd.DataFrame(
                {
                    "date": dates,
                    "product_id": pid,
                    "product_name": name,
                    "category": category,
                    "price": price,
                    "promotion": promo,
                    "holiday": pd.array(holiday, dtype="str"),
                    "stockout": stockout,
                    "units_sold": sold.astype(np.int64),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["date", "product_id"], kind="stable", ignore_index=True)
