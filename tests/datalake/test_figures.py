"""The lineage figure builder, on plain data as datalake.services.dataset_lineage returns it."""

import ast
from pathlib import Path

from datalake.figures import lineage_figure

THIS, SOURCE, OUT = "d-this", "d-source", "d-out"


def version(vid, dataset, label):
    return {"type": "dataset_version", "id": vid, "dataset": dataset, "label": label}


def hidden(vid):
    return {"type": "dataset_version", "id": vid, "dataset": None, "label": "a dataset you cannot see"}


def edge(a, b, via=""):
    return {"from": a, "to": b, "via": {"type": "datalake.recipe" if via else "", "id": via}}


def nodes(figure):
    """{label: (x, y, trace name, customdata, hovertext)} of every node trace."""
    found = {}
    for trace in figure["data"][1:]:
        for x, y, label, url, hover in zip(
            trace["x"], trace["y"], trace["text"], trace["customdata"], trace["hovertext"], strict=True
        ):
            found[label] = (x, y, trace["name"], url, hover)
    return found


def segments(figure):
    xs, ys = figure["data"][0]["x"], figure["data"][0]["y"]
    return [((xs[i], ys[i]), (xs[i + 1], ys[i + 1])) for i in range(0, len(xs), 3)]


def test_empty_lineage_gives_no_figure():
    assert lineage_figure([], dataset_id=THIS) is None


def test_upstream_recipe_this_and_downstream_are_laid_out_left_to_right():
    edges = [
        edge(version("s1", SOURCE, "prod.source v1"), version("t1", THIS, "prod.this v1"), via="r-up"),
        edge(version("t1", THIS, "prod.this v1"), version("o1", OUT, "prod.out v1"), via="r-down"),
    ]
    figure = lineage_figure(
        edges,
        dataset_id=THIS,
        recipes={"r-up": "clean", "r-down": "scale"},
        links={SOURCE: "/data/d-source/", THIS: "/data/d-this/", OUT: "/data/d-out/"},
    )
    found = nodes(figure)
    assert [found[label][0] for label in ("prod.source v1", "clean", "prod.this v1", "scale", "prod.out v1")] == [0, 1, 2, 3, 4]
    assert found["prod.this v1"][2] == "This dataset" and found["prod.source v1"][2] == "Other datasets"
    assert found["clean"][2] == "Recipe" and found["clean"][4] == "Recipe: clean → prod.this v1"
    assert found["prod.out v1"][3] == "/data/d-out/" and found["clean"][3] == ""
    # Each edge through a recipe is two segments: from → recipe → to.
    assert len(segments(figure)) == 4
    assert ((0, 0.0), (1, 0.0)) in segments(figure) and ((1, 0.0), (2, 0.0)) in segments(figure)
    assert figure["layout"]["xaxis"]["visible"] is False


def test_versions_of_this_dataset_share_one_column_and_runs_do_not_cross():
    # v1 was made from the source; v2 only feeds a downstream dataset: both still sit in this dataset's column.
    edges = [
        edge(version("s1", SOURCE, "prod.source v1"), version("t1", THIS, "prod.this v1"), via="r"),
        edge(version("s2", SOURCE, "prod.source v2"), version("t10", THIS, "prod.this v10"), via="r"),
        edge(version("t2", THIS, "prod.this v2"), version("o1", OUT, "prod.out v1"), via="r2"),
    ]
    figure = lineage_figure(edges, dataset_id=THIS, recipes={"r": "clean", "r2": "agg"})
    found = nodes(figure)
    assert found["prod.this v1"][0] == found["prod.this v2"][0] == found["prod.this v10"][0] == 2
    assert found["agg"][0] == 3 and found["prod.out v1"][0] == 4
    recipe_nodes = [trace for trace in figure["data"] if trace["name"] == "Recipe"][0]
    assert recipe_nodes["text"].count("clean") == 2  # one node per run (recipe, output), not one shared
    assert len(segments(figure)) == 6
    # Versions in a column are in version order (v2 before v10), top to bottom.
    assert found["prod.this v1"][1] > found["prod.this v2"][1] > found["prod.this v10"][1]


def test_hidden_datasets_and_recipes_are_labelled_as_such_without_links():
    edges = [edge(hidden("x1"), version("t1", THIS, "prod.this v1"), via="r-secret")]
    figure = lineage_figure(
        edges,
        dataset_id=THIS,
        links={THIS: "/data/d-this/"},
        texts={"hidden": "Datasets you cannot see", "unknown_recipe": "a recipe you cannot see"},
    )
    found = nodes(figure)
    assert found["a dataset you cannot see"][2] == "Datasets you cannot see"
    assert found["a dataset you cannot see"][3] == ""
    assert "a recipe you cannot see" in found
    assert found["prod.this v1"][3] == "/data/d-this/"


def test_direct_edges_and_other_objects_are_drawn_without_a_recipe_node():
    model = {"type": "models_repo.modelversion", "id": "12345678-aaaa"}
    figure = lineage_figure([edge(version("t1", THIS, "prod.this v1"), model)], dataset_id=THIS)
    found = nodes(figure)
    assert found["models_repo.modelversion 12345678"][0] == 1 and found["prod.this v1"][0] == 0
    assert len(segments(figure)) == 1


def test_a_cycle_in_bad_data_does_not_hang():
    a, b = version("a", SOURCE, "a v1"), version("b", OUT, "b v1")
    figure = lineage_figure([edge(a, b), edge(b, a)], dataset_id=THIS)
    assert len(nodes(figure)) == 2


def test_the_module_does_not_import_django():
    tree = ast.parse((Path(__file__).resolve().parents[2] / "datalake" / "figures.py").read_text())
    imported = {n.names[0].name for n in ast.walk(tree) if isinstance(n, ast.Import)}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(name.startswith("django") for name in imported)
