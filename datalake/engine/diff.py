"""What changed between two versions of a dataset, from their schemas and profiles (plain dicts)."""

from __future__ import annotations

# A mean that moves by more than this many standard deviations, or a missing-value share that
# moves by more than this many points, is reported as a shift worth a look.
MEAN_SHIFT_STD = 0.5
NULL_SHIFT = 0.05


def version_diff(old: dict, new: dict) -> dict:
    """Compare two versions given as {"rows": int, "profile": {"columns": [...]}}.

    Returns added, removed and retyped columns, the row counts, and per common column the
    shifts of mean and missing share that pass the thresholds above.
    """
    old_cols = {c["name"]: c for c in old.get("profile", {}).get("columns", [])}
    new_cols = {c["name"]: c for c in new.get("profile", {}).get("columns", [])}
    added = [name for name in new_cols if name not in old_cols]
    removed = [name for name in old_cols if name not in new_cols]
    retyped = [
        {"column": name, "from": old_cols[name]["type"], "to": new_cols[name]["type"]}
        for name in new_cols
        if name in old_cols and old_cols[name]["type"] != new_cols[name]["type"]
    ]
    shifts = []
    for name, column in new_cols.items():
        before = old_cols.get(name)
        if before is None:
            continue
        entry = {"column": name}
        old_mean, new_mean, std = before.get("mean"), column.get("mean"), before.get("std")
        if old_mean is not None and new_mean is not None:
            scale = std if std else (abs(old_mean) or 1.0)
            moved = (new_mean - old_mean) / scale
            if abs(moved) > MEAN_SHIFT_STD:
                entry["mean"] = {"from": old_mean, "to": new_mean, "in_std": round(moved, 3)}
        old_null, new_null = before.get("null_fraction", 0.0), column.get("null_fraction", 0.0)
        if abs(new_null - old_null) > NULL_SHIFT:
            entry["missing_share"] = {"from": round(old_null, 4), "to": round(new_null, 4)}
        if len(entry) > 1:
            shifts.append(entry)
    rows_old, rows_new = old.get("rows"), new.get("rows")
    return {
        "rows": {"from": rows_old, "to": rows_new, "change": (rows_new - rows_old) if None not in (rows_old, rows_new) else None},
        "added": added,
        "removed": removed,
        "retyped": retyped,
        "shifts": shifts,
        "same_schema": not (added or removed or retyped),
    }
