"""Input drift: a reference profile of a model's training inputs, and PSI and KS against it.

No Django here: monitoring.services reads the training rows and the sampled prediction inputs
and passes plain lists or arrays; everything returned is JSON-able and stored as it is.

- Numeric features (schema types number, integer): the reference's deciles cut the line into
  at most BINS bins, open at both ends so that values outside the training range land in the
  end bins; a value that alone holds at least one bin's share (a constant column, a feature
  that is mostly 0) gets a bin of its own, so a shift off it is seen. One more bin holds the
  missing values (None, NaN, ±inf, text that is not a number). A sorted random sample of at
  most REFERENCE_SAMPLE values is kept for the two-sample Kolmogorov–Smirnov test.
- Categorical features (string, boolean; free text is compared the same way): the shares of
  the TOP_CATEGORIES most frequent values, of all the others ("other", where values never
  seen in training go too) and of missing values. KS does not apply.
- Datetimes are skipped: prediction times move past the training period by nature, so a date
  input would always look drifted. Images and unknown types are skipped too.

PSI = Σ (a_i − e_i) · ln(a_i / e_i) over the bins, e the reference shares, a the current
ones. A share of zero is raised to EPSILON first (the log is undefined at 0; the shares are
not renormalised), so a bin empty on one side adds a large but finite term: with EPSILON =
1e-4, 10 % of the inputs in a bin that training never filled adds 0.1 · ln(1000) ≈ 0.69.
Usual reading (configurable): below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 significant.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

BINS = 10
TOP_CATEGORIES = 20
REFERENCE_SAMPLE = 2_000
EPSILON = 1e-4
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
# scipy.stats.ks_2samp's method="auto" is exact up to this size of the larger sample.
KS_EXACT_MAX_N = 10_000

NUMERIC_TYPES = ("number", "integer")
CATEGORICAL_TYPES = ("string", "boolean", "text")
MISSING, OTHER = "missing", "other"

# Why a feature or a comparison has no drift value; monitoring.selectors words them for people.
SKIP_DATETIME = "datetime"
SKIP_TYPE = "unsupported_type"
SKIP_NO_VALUES = "no_values"
TOO_FEW = "too_few"

STABLE, MODERATE, SIGNIFICANT, INSUFFICIENT, SKIPPED = "stable", "moderate", "significant", "insufficient", "skipped"


# --- the two measures ------------------------------------------------------------------------


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = EPSILON) -> float:
    """Population stability index of two share vectors over the same bins (zero shares → epsilon)."""
    e = np.maximum(np.asarray(expected, dtype=float), epsilon)
    a = np.maximum(np.asarray(actual, dtype=float), epsilon)
    if e.shape != a.shape:
        raise ValueError(f"expected and actual need the same bins ({e.shape} and {a.shape})")
    return float(np.sum((a - e) * np.log(a / e)))


def ks_2samp(first: Iterable[float], second: Iterable[float]) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov–Smirnov statistic and p-value, as scipy.stats.ks_2samp gives them.

    Exact p-value (lattice paths, continuous data assumed) when the larger sample has at most
    KS_EXACT_MAX_N values, as scipy's default; else the one-sample KS distribution at the
    effective size n·m/(n+m), here by Vrbik's (2018) corrected Kolmogorov limit (within a few
    1e-4 of scipy's for effective sizes ≥ 50, far less for large ones). NaNs are not allowed.
    """
    a = np.sort(np.asarray(first, dtype=float))
    b = np.sort(np.asarray(second, dtype=float))
    n1, n2 = a.size, b.size
    if min(n1, n2) == 0:
        raise ValueError("ks_2samp needs two non-empty samples")
    both = np.concatenate([a, b])
    diff = np.searchsorted(a, both, side="right") / n1 - np.searchsorted(b, both, side="right") / n2
    d = float(max(diff.max(), -diff.min(), 0.0))
    if max(n1, n2) <= KS_EXACT_MAX_N:
        return _ks_exact(n1, n2, d)
    return d, _kstwo_sf(d, round(n1 * n2 / (n1 + n2)))


def _ks_exact(n1: int, n2: int, d: float) -> tuple[float, float]:
    """(d on the lattice, P(D ≥ d)): 1 − the share of monotone paths (0,0)→(n1,n2) staying in the band.

    A path point (i, j) (i values of the larger sample and j of the smaller seen) is inside when
    |i/n_big − j/n_small| < d, in integers |i·a − j·b| < h with a, b, h on the lcm. Each row of the
    band is the running sum of the row below over the band's interval; rows are rescaled to
    stay in floating range and the scale is kept as a logarithm.
    """
    big, small = max(n1, n2), min(n1, n2)
    lcm = big // math.gcd(big, small) * small
    h = int(round(d * lcm))
    d = h / lcm
    if h == 0:
        return d, 1.0
    a, b = lcm // big, lcm // small
    counts = np.zeros(big + 1)
    low, high = 0, min(big, -(-h // a) - 1)
    counts[: high + 1] = 1.0
    log_scale = 0.0
    for j in range(1, small + 1):
        new_low = max(0, (j * b - h) // a + 1)
        new_high = min(big, -(-(j * b + h) // a) - 1)
        counts[low:new_low] = 0.0  # left the band from below
        if new_low > new_high:
            return d, 1.0
        segment = np.cumsum(counts[new_low : new_high + 1])
        top = segment[-1]
        if top <= 0.0:
            return d, 1.0
        counts[new_low : new_high + 1] = segment / top
        log_scale += math.log(top)
        low, high = new_low, new_high
    if high < big or counts[big] <= 0.0:
        return d, 1.0
    log_total = math.lgamma(big + small + 1) - math.lgamma(big + 1) - math.lgamma(small + 1)
    inside = math.exp(math.log(counts[big]) + log_scale - log_total)
    return d, float(min(1.0, max(0.0, 1.0 - inside)))


def _kolmogorov_sf(x: float) -> float:
    """P(K > x) of the Kolmogorov distribution (the series that converges fast on each side of 1)."""
    if x <= 0.0:
        return 1.0
    k = np.arange(1, 101)
    if x < 1.0:
        cdf = math.sqrt(2 * math.pi) / x * float(np.sum(np.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * x * x))))
        return float(min(1.0, max(0.0, 1.0 - cdf)))
    return float(min(1.0, max(0.0, 2.0 * np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k**2 * x * x)))))


def _kstwo_sf(d: float, n: int) -> float:
    """P(D_n ≥ d) of the one-sample KS statistic, by Vrbik's correction of the Kolmogorov limit."""
    if d <= 0.0:
        return 1.0
    if d >= 1.0:
        return 0.0
    root = math.sqrt(n)
    x = root * d
    return _kolmogorov_sf(x + 1.0 / (6.0 * root) + (x - 1.0) / (4.0 * n))


def status_for(value: float | None, moderate: float = PSI_MODERATE, significant: float = PSI_SIGNIFICANT) -> str:
    """stable below `moderate`, significant above `significant`, moderate between (both included)."""
    if value is None:
        return INSUFFICIENT
    if value < moderate:
        return STABLE
    return SIGNIFICANT if value > significant else MODERATE


# --- reading values ----------------------------------------------------------------------------


def input_records(inputs, columns: Sequence[str] = ()) -> list[dict]:
    """The {column: value} records of one logged prediction's `inputs`, whatever else it holds.

    A list of records is the usual shape. A sequence model's inputs are windows, each a list of
    rows of values in its `columns` order (models_repo.engine.deep.serving): those rows become
    records too, as do positional rows of a table. Anything else (images, rows of another
    width) gives nothing.
    """
    if not isinstance(inputs, list):
        return []
    width = len(columns)
    found: list[dict] = []

    def positional(row) -> bool:
        return isinstance(row, list) and width > 0 and len(row) == width and not any(isinstance(v, list | dict) for v in row)

    for item in inputs:
        if isinstance(item, dict):
            found.append(item)
        elif positional(item):
            found.append(dict(zip(columns, item, strict=True)))
        elif isinstance(item, list):
            for row in item:
                if isinstance(row, dict):
                    found.append(row)
                elif positional(row):
                    found.append(dict(zip(columns, row, strict=True)))
    return found


def _floats(values) -> np.ndarray:
    """Values as floats, NaN for anything missing or not a finite number."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        x = values.astype(float, copy=True)
    else:
        x = np.fromiter((_float(v) for v in values), dtype=float)
    x[~np.isfinite(x)] = np.nan
    return x


def _float(value) -> float:
    if value is None or isinstance(value, str) and not value.strip():
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _category(value) -> str | None:
    """A categorical value as text, None when missing; 3, 3.0 and "3" are one category, True is "true"."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def kind_of(schema_type: str) -> str:
    if schema_type in NUMERIC_TYPES:
        return "numeric"
    if schema_type in CATEGORICAL_TYPES:
        return "categorical"
    return "skipped"


# --- profiles ----------------------------------------------------------------------------------


def profile_feature(
    name: str,
    schema_type: str,
    values,
    *,
    bins: int = BINS,
    top: int = TOP_CATEGORIES,
    sample: int = REFERENCE_SAMPLE,
    seed: int = 0,
) -> dict:
    """The reference profile of one feature from its training values (see the module's docstring)."""
    kind = kind_of(schema_type)
    base = {"name": name, "type": schema_type, "kind": kind}
    if kind == "skipped":
        return {**base, "reason": SKIP_DATETIME if schema_type == "datetime" else SKIP_TYPE}
    if kind == "numeric":
        return _profile_numeric(base, _floats(values), bins=bins, sample=sample, seed=seed)
    return _profile_categorical(base, [_category(v) for v in values], top=top)


def _skipped(base: dict, reason: str) -> dict:
    return {**base, "kind": "skipped", "reason": reason}


def _profile_numeric(base: dict, x: np.ndarray, *, bins: int, sample: int, seed: int) -> dict:
    total = int(x.size)
    finite = np.sort(x[~np.isnan(x)])
    if finite.size == 0:
        return _skipped(base, SKIP_NO_VALUES)
    cuts = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    # A value holding at least one bin's share gets a bin of its own: [c, next float after c).
    heavy = [c for c in cuts if (np.searchsorted(finite, c, "right") - np.searchsorted(finite, c, "left")) >= finite.size / bins]
    if heavy:
        cuts = np.unique(np.concatenate([cuts, np.nextafter(np.asarray(heavy), np.inf)]))
    counts = np.bincount(np.searchsorted(cuts, finite, side="right"), minlength=cuts.size + 1)
    missing = total - int(finite.size)
    if finite.size > sample:
        kept = np.sort(np.random.default_rng(seed).choice(finite, size=sample, replace=False))
    else:
        kept = finite
    return {
        **base,
        "count": total,
        "missing": missing / total,
        "cuts": [float(c) for c in cuts],
        "proportions": [float(c) / total for c in counts] + [missing / total],
        "sample": [float(v) for v in kept],
        "min": float(finite[0]),
        "max": float(finite[-1]),
        "mean": float(finite.mean()),
    }


def _profile_categorical(base: dict, labels: list[str | None], *, top: int) -> dict:
    total = len(labels)
    counter = Counter(label for label in labels if label is not None)
    present = sum(counter.values())
    if present == 0:
        return _skipped(base, SKIP_NO_VALUES)
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    kept = sum(n for _, n in ranked)
    return {
        **base,
        "count": total,
        "missing": (total - present) / total,
        "categories": [label for label, _ in ranked],
        "proportions": [n / total for _, n in ranked] + [(present - kept) / total, (total - present) / total],
        "distinct": len(counter),
        # Below 1: free text or many values, compared by its frequent ones and the share of others.
        "coverage": kept / present,
    }


def bin_labels(profile: dict) -> list[str]:
    """Names of a profile's bins, in the order of its proportions."""
    if profile.get("kind") == "categorical":
        return [*profile["categories"], OTHER, MISSING]
    if profile.get("kind") != "numeric":
        return []
    cuts = [f"{c:.4g}" for c in profile["cuts"]]
    middle = [f"[{lo}, {hi})" for lo, hi in zip(cuts, cuts[1:], strict=False)]
    return [f"< {cuts[0]}", *middle, f"≥ {cuts[-1]}", MISSING]


# --- comparison --------------------------------------------------------------------------------


def shares(profile: dict, values) -> tuple[np.ndarray, int, np.ndarray | None]:
    """(current shares over the profile's bins, number of values, finite numbers for KS or None)."""
    if profile["kind"] == "numeric":
        x = _floats(values)
        finite = x[~np.isnan(x)]
        cuts = np.asarray(profile["cuts"])
        counts = np.bincount(np.searchsorted(cuts, finite, side="right"), minlength=cuts.size + 1)
        total = x.size
        current = np.append(counts, total - finite.size) / max(total, 1)
        return current, int(total), finite
    index = {label: i for i, label in enumerate(profile["categories"])}
    other, missing = len(index), len(index) + 1
    counts = np.zeros(len(index) + 2)
    total = 0
    for value in values:
        label = _category(value)
        counts[missing if label is None else index.get(label, other)] += 1
        total += 1
    return counts / max(total, 1), total, None


def compare(
    profile: dict,
    values,
    *,
    min_sample: int = 1,
    moderate: float = PSI_MODERATE,
    significant: float = PSI_SIGNIFICANT,
    epsilon: float = EPSILON,
) -> dict:
    """The drift of one feature: current `values` against its reference `profile`.

    Returns {feature, kind, psi, ks_statistic, ks_pvalue, sample_size, status, reason, bins}.
    The status follows PSI (KS flags tiny shifts once samples are large, so it is reported,
    not judged on); fewer than `min_sample` values give status insufficient and no numbers.
    """
    out = {
        "feature": profile["name"],
        "kind": profile["kind"],
        "psi": None,
        "ks_statistic": None,
        "ks_pvalue": None,
        "sample_size": 0,
        "status": SKIPPED,
        "reason": profile.get("reason", ""),
        "bins": {},
    }
    if profile["kind"] == "skipped":
        return out
    current, total, finite = shares(profile, values)
    out["sample_size"] = total
    if total < max(min_sample, 1):
        return {**out, "status": INSUFFICIENT, "reason": TOO_FEW}
    value = psi(profile["proportions"], current, epsilon)
    out.update(psi=value, status=status_for(value, moderate, significant), reason="")
    out["bins"] = {
        "labels": bin_labels(profile),
        "expected": [round(float(p), 6) for p in profile["proportions"]],
        "actual": [round(float(p), 6) for p in current],
    }
    if finite is not None and finite.size and profile.get("sample"):
        out["ks_statistic"], out["ks_pvalue"] = ks_2samp(finite, profile["sample"])
    return out
