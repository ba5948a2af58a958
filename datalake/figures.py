"""Plotly figures of the data lake, built from plain data (no Django import, as the engines).

    figure = lineage_figure(
        lineage["edges"],                       # datalake.services.dataset_lineage(...)["edges"]
        dataset_id=str(dataset.pk),
        recipes={recipe_id: "clean"},           # names of the recipes the user may see
        links={dataset_id: "/data/<id>/"},      # pages of the datasets the user may see
        texts={"recipe": "Recipe", ...},        # translated words (see TEXTS)
    )

Promises (tests/datalake/test_figures.py pins them):
- Nodes are laid out left → right by depth: a node sits one column right of its deepest
  predecessor; the versions of the dataset `dataset_id` share one column, so upstream versions,
  the recipe, this dataset's versions and what was made from them read in that order.
- Each lineage edge through a recipe becomes two segments, from → recipe → to; the recipe node is
  one per (recipe, output), so the two runs of one recipe do not look as if they crossed.
- A version of a dataset the user cannot see keeps the service's label and gets no link.
- Points carry `customdata`: the page to open on click ("" for none), read by static/js/lepton.js.
- No edges: None (the page shows its empty state instead of a figure).
"""

from __future__ import annotations

import re

VERSION = "dataset_version"
TEXTS = {
    "this": "This dataset",
    "dataset": "Other datasets",
    "hidden": "Datasets you cannot see",
    "recipe": "Recipe",
    "run": "Training runs",
    "model": "Model versions",
    "other": "Other objects",
    "unknown_recipe": "a recipe you cannot see",
}
# Objects of other parts, styled by their "app_label.model" type (the rest are "other").
OBJECT_KINDS = {"models_repo.trainingrun": "run", "models_repo.modelversion": "model"}
KIND_STYLE = {
    "this": {"color": "#1f3580", "symbol": "circle", "size": 16},
    "dataset": {"color": "#2f8f6a", "symbol": "circle", "size": 14},
    "hidden": {"color": "#9aa0a6", "symbol": "circle-open", "size": 14},
    "recipe": {"color": "#c77c12", "symbol": "diamond", "size": 13},
    "run": {"color": "#5b6b8c", "symbol": "triangle-right", "size": 13},
    "model": {"color": "#a8326e", "symbol": "star", "size": 16},
    "other": {"color": "#7a4fa8", "symbol": "square", "size": 13},
}


def _natural(text: str) -> list:
    """Sort key that puts v2 before v10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def lineage_figure(
    edges: list[dict],
    *,
    dataset_id: str,
    recipes: dict[str, str] | None = None,
    links: dict[str, str] | None = None,
    texts: dict[str, str] | None = None,
) -> dict | None:
    """A Plotly figure dict of the lineage `edges` around the dataset `dataset_id`, or None without edges."""
    if not edges:
        return None
    recipes, links, texts = recipes or {}, links or {}, {**TEXTS, **(texts or {})}
    nodes: dict[tuple, dict] = {}
    arcs: list[tuple[tuple, tuple]] = []

    def add_object(node: dict) -> tuple:
        key = (node.get("type", ""), str(node.get("id", "")))
        if key not in nodes:
            if node.get("type") == VERSION:
                seen = node.get("dataset")
                kind = "hidden" if not seen else ("this" if str(seen) == str(dataset_id) else "dataset")
                label = node.get("label") or texts["hidden"]
                url = links.get(str(seen), "") if seen else ""
            else:
                kind = OBJECT_KINDS.get(key[0], "other")
                label, url = node.get("label") or f"{key[0]} {key[1][:8]}", node.get("url", "")
            nodes[key] = {"kind": kind, "label": label, "hover": label, "url": url}
        return key

    for edge in edges:
        source, target = add_object(edge["from"]), add_object(edge["to"])
        via = edge.get("via") or {}
        if via.get("id") and via.get("type", "datalake.recipe") in ("datalake.recipe", ""):
            key = ("recipe", str(via["id"]), target)
            if key not in nodes:
                name = recipes.get(str(via["id"]))
                label = name or texts["unknown_recipe"]
                nodes[key] = {
                    "kind": "recipe",
                    "label": label,
                    "hover": f"{texts['recipe']}: {label} → {nodes[target]['label']}",
                    "url": "",
                }
            for arc in ((source, key), (key, target)):
                if arc not in arcs:
                    arcs.append(arc)
        elif (source, target) not in arcs:
            arcs.append((source, target))

    depth = _depths(list(nodes), arcs, {k for k, n in nodes.items() if n["kind"] == "this"})
    columns: dict[int, list[tuple]] = {}
    for key in nodes:
        columns.setdefault(depth[key], []).append(key)
    position = {}
    for column, keys in columns.items():
        keys.sort(key=lambda k: (nodes[k]["kind"] != "this", _natural(nodes[k]["label"])))
        for row, key in enumerate(keys):
            position[key] = (column, (len(keys) - 1) / 2 - row)

    line_x, line_y = [], []
    for a, b in arcs:
        line_x += [position[a][0], position[b][0], None]
        line_y += [position[a][1], position[b][1], None]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": line_x,
            "y": line_y,
            "line": {"color": "#b8bec6", "width": 1.5},
            "hoverinfo": "skip",
            "showlegend": False,
            "name": "edges",
        }
    ]
    for kind in ("dataset", "this", "recipe", "hidden", "run", "model", "other"):
        keys = [k for k in nodes if nodes[k]["kind"] == kind]
        if not keys:
            continue
        style = KIND_STYLE[kind]
        data.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": texts[kind],
                "x": [position[k][0] for k in keys],
                "y": [position[k][1] for k in keys],
                "text": [nodes[k]["label"] for k in keys],
                "hovertext": [nodes[k]["hover"] for k in keys],
                "hoverinfo": "text",
                "customdata": [nodes[k]["url"] for k in keys],
                # Labels above in even columns, below in odd ones, so neighbours' long names do not overlap.
                "textposition": ["top center" if position[k][0] % 2 == 0 else "bottom center" for k in keys],
                "textfont": {"size": 11},
                "marker": {"color": style["color"], "symbol": style["symbol"], "size": style["size"], "line": {"width": 1.5}},
                "cliponaxis": False,
            }
        )
    tallest = max(len(keys) for keys in columns.values())
    width = max(columns)
    return {
        "data": data,
        "layout": {
            "height": min(640, 170 + 70 * tallest),
            "margin": {"t": 24, "r": 90, "b": 24, "l": 90},  # room for the labels of the outer columns
            "showlegend": True,
            "legend": {"orientation": "h", "y": -0.05, "font": {"size": 11}},
            "hovermode": "closest",
            "xaxis": {"visible": False, "range": [-0.5, width + 0.5], "fixedrange": True},
            "yaxis": {"visible": False, "range": [-tallest / 2 - 0.2, tallest / 2 + 0.2], "fixedrange": True},
        },
        "config": {"displayModeBar": False},
    }


def _depths(keys: list[tuple], arcs: list[tuple[tuple, tuple]], aligned: set[tuple]) -> dict[tuple, int]:
    """Longest-path column of each node; the `aligned` nodes are put in one column (their deepest)."""
    incoming: dict[tuple, list[tuple]] = {k: [] for k in keys}
    for a, b in arcs:
        incoming[b].append(a)
    floor = dict.fromkeys(keys, 0)

    def settle() -> dict[tuple, int]:
        depth = dict(floor)
        # At most len(keys) rounds: lineage is acyclic, and a cycle (bad data) must not loop forever.
        for _ in range(len(keys)):
            changed = False
            for key in keys:
                best = max([floor[key], *(depth[p] + 1 for p in incoming[key])])
                if best != depth[key] and best <= len(keys):
                    depth[key], changed = best, True
            if not changed:
                break
        return depth

    depth = settle()
    if aligned:
        column = max(depth[k] for k in aligned)
        for key in aligned:
            floor[key] = column
        depth = settle()
    return depth
