"""The review page's evidence: what a reviewer sees drawn, checked as plain functions of the stored data."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from evidence import NOTABLE_DRIFT, _shade, class_table, confusion_matrix_svg, evidence_section, history_svg

CLASSES = ["setosa", "versicolor", "virginica"]


def _model(name: str, matrix: list[list[int]]) -> dict:
    per_class = {}
    for index, label in enumerate(CLASSES):
        support = sum(matrix[index])
        recall = matrix[index][index] / support
        per_class[label] = {"precision": 1.0, "recall": recall, "f1": recall, "support": support}
    rows = sum(map(sum, matrix))
    correct = sum(matrix[i][i] for i in range(len(matrix)))
    return {"modelName": name, "accuracy": correct / rows, "perClass": per_class, "confusionMatrix": matrix}


CANDIDATE = _model("mlops-new", [[8, 0, 0], [0, 6, 2], [0, 0, 8]])
PRODUCTION = _model("mlops-old", [[8, 0, 0], [0, 8, 0], [0, 4, 4]])
SUMMARY = {
    "testRows": 24,
    "classes": CLASSES,
    "candidate": CANDIDATE,
    "production": PRODUCTION,
    "data": {
        "trainRows": 105,
        "testRows": 24,
        "testRowsSeenByProduction": 0,
        "classBalance": {"setosa": 0.33, "versicolor": 0.33, "virginica": 0.34},
        "baseline": {
            "modelName": "mlops-old",
            "trainRows": 26,
            "classBalance": {"setosa": 0.35, "versicolor": 0.31, "virginica": 0.34},
            "drift": {
                "petal_width": {"statistic": "Kolmogorov-Smirnov", "value": 0.05},
                "sensor": {"statistic": "total variation", "value": 0.41},
            },
        },
    },
    "classDeltas": {
        "setosa": {"support": 8, "candidate": 1.0, "production": 1.0, "delta": 0.0, "rowsLost": 0},
        "versicolor": {"support": 8, "candidate": 0.75, "production": 1.0, "delta": -0.25, "rowsLost": 2},
        "virginica": {"support": 8, "candidate": 1.0, "production": 0.5, "delta": 0.5, "rowsLost": -4},
    },
}
HISTORY = [
    {"modelName": "mlops-first", "accuracy": 0.91, "testRows": 6, "promotedAt": "2026-11-01T00:00:00Z"},
    {"modelName": "mlops-old", "accuracy": 1.0, "testRows": 6, "promotedAt": "2026-11-08T00:00:00Z"},
]
EVIDENCE = {
    "summary": SUMMARY,
    "history": HISTORY,
    "links": {
        "trainingJob": {"name": "mlops-new-job", "url": "https://us-east-1.console.aws.amazon.com/sagemaker/x"},
        "modelArtifacts": {"name": "s3://artifacts/runs/r/model/model.tar.gz", "url": "https://console/s3/y"},
    },
}


class Elements(HTMLParser):
    """Tags and attributes of an HTML fragment, to check what a browser would load."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _contrast(foreground: str, background: str) -> float:
    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_both_confusion_matrices_are_drawn_with_every_count() -> None:
    html = evidence_section(EVIDENCE)
    for figure, matrix in (("candidate-matrix", CANDIDATE), ("production-matrix", PRODUCTION)):
        drawn = html.split(f"<figure id={figure}>", 1)[1].split("</figure>", 1)[0]
        counts = re.findall(r'text-anchor="middle">(\d+)</text>', drawn)
        assert [int(c) for c in counts] == [n for row in matrix["confusionMatrix"] for n in row]
        assert all(name in drawn for name in CLASSES)


def test_every_count_stays_readable_on_its_cell() -> None:
    for step in range(101):
        fill, ink = _shade(step / 100)
        assert _contrast(ink, fill) >= 4.5, (step, fill, ink)


def test_a_class_whose_recall_fell_is_marked_down_and_one_that_rose_up() -> None:
    rows = {m.group(2): m.group(1) for m in re.finditer(r'<tr class="(\w*)"><td>(\w+)</td>', class_table(SUMMARY))}
    assert rows == {"setosa": "", "versicolor": "down", "virginica": "up"}
    assert "▼ -0.2500 (down)" in class_table(SUMMARY)


def test_the_history_chart_plots_each_production_model_then_the_candidate() -> None:
    chart = history_svg(HISTORY, 0.9167)
    titles = re.findall(r"<title>([^<]+)</title></circle>", chart)
    assert titles == ["mlops-first: 0.9100", "mlops-old: 1.0000", "this candidate: 0.9167"]
    assert chart.count("<polyline") == 1  # the line joins production models only
    assert "No model has been in production yet" in history_svg([], None)


def test_drift_at_the_notable_level_is_called_out_and_listed_first() -> None:
    html = evidence_section(EVIDENCE)
    drift = html.split("<table id=drift>", 1)[1].split("</table>", 1)[0]
    assert drift.index("sensor") < drift.index("petal_width")
    assert f"{0.41:.3f} (shifted)" in drift and NOTABLE_DRIFT <= 0.41
    assert "0.050 (shifted)" not in drift


def test_stored_values_are_escaped_and_nothing_is_loaded_from_elsewhere() -> None:
    hostile = {**EVIDENCE, "summary": {**SUMMARY, "classes": ["<script>alert(1)</script>", "b", "c"]}}
    html = evidence_section(hostile)
    assert "<script>" not in html and "&lt;script&gt;" in html
    loaded = [(tag, attrs) for tag, attrs in Elements(html).tags if {"src", "srcset"} & set(attrs)]
    assert loaded == [] and not any(tag in ("script", "link", "img", "iframe") for tag, _ in Elements(html).tags)
    links = [attrs["href"] for tag, attrs in Elements(html).tags if tag == "a"]
    assert links == [EVIDENCE["links"]["trainingJob"]["url"], EVIDENCE["links"]["modelArtifacts"]["url"]]


def test_a_first_model_shows_its_own_matrix_and_says_there_is_nothing_to_compare() -> None:
    first = {"summary": {**SUMMARY, "production": None, "classDeltas": {}, "data": {"trainRows": 51}}}
    html = evidence_section(first)
    assert "candidate-matrix" in html and "production-matrix" not in html
    assert "No model has been in production yet" not in html  # the candidate alone is still a point
    assert "no production model whose training data to compare" in html


def test_a_long_class_name_is_shortened_on_the_axis_and_kept_whole_in_its_tooltip() -> None:
    name = "a-very-long-class-name-indeed"
    svg = confusion_matrix_svg("m", [name, "b"], [[1, 0], [0, 1]])
    assert f"<title>{name}</title>" in svg and "a-very-long-c…" in svg


def test_a_schema_change_is_listed_and_absent_when_the_schemas_agree() -> None:
    change = {"featuresAdded": ["colour"], "featuresRemoved": ["zip"], "classesAdded": [], "classesRemoved": [],
              "featuresRetyped": {"size": {"production": "number", "candidate": "category"}},
              "newCategories": {"plan": ["team"]}}  # fmt: skip
    html = evidence_section({"summary": {**SUMMARY, "schemaChange": change}})
    listed = re.findall(r"<li>([^<]+)</li>", html.split("<ul id=schema-change>", 1)[1].split("</ul>", 1)[0])
    assert listed == ["features only the candidate has: colour", "features only production has: zip",
                      "size was number, is now category", "new categories of plan: team"]  # fmt: skip
    assert "schema-change" not in evidence_section(EVIDENCE)
