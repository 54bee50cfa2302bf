"""The review page's evidence, drawn as inline SVG and tables: no scripts, fonts or files to fetch, so
it keeps the page's Content-Security-Policy and works without JavaScript. Every value is escaped.

``evidence`` is what the approval request stored: the gate's ``summary`` of the evaluation (both models
scored on the same test rows), the registry's ``history`` of production models, and ``links``.
"""

from __future__ import annotations

from html import escape
from typing import Any

INK = "#16191f"
MUTED = "#545b64"
GRID = "#d5dbdb"
CANDIDATE = "#0b5394"
PRODUCTION = "#6b4c00"
# Drift at or above this is called out: a Kolmogorov-Smirnov statistic or a total variation distance of
# 0.2 means a fifth of the mass moved, enough to explain a change in accuracy.
NOTABLE_DRIFT = 0.2
LABEL_CHARS = 14

STYLE = (
    ".evidence h2{font-size:1.15rem;margin:1.6rem 0 .4rem}"
    ".matrices{display:flex;flex-wrap:wrap;gap:1.5rem}"
    f".matrices figure{{margin:0}}.matrices figcaption,.chart figcaption{{color:{INK};font-weight:600}}"
    "tr.down td{background:#fde7e9;color:#7a0010}tr.up td{color:#1d6b00}"
    ".drifted{color:#7a0010;font-weight:600}"
    "svg text{font-family:system-ui,sans-serif}"
)


def _number(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _short(name: Any) -> str:
    text = str(name)
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _luminance(colour: str) -> float:
    """WCAG relative luminance of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    red, green, blue = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _shade(fraction: float) -> tuple[str, str]:
    """Cell fill from white to dark blue, and whichever of white or black text contrasts more with it: one
    of the two always reaches 4.5:1 (the page's dark grey ink would not on mid blues)."""
    mix = max(0.0, min(1.0, fraction))
    red, green, blue = (round(255 + (dark - 255) * mix) for dark in (11, 83, 148))
    fill = f"#{red:02x}{green:02x}{blue:02x}"
    background = _luminance(fill)
    on_white = 1.05 / (background + 0.05)
    on_black = (background + 0.05) / 0.05
    return fill, "#ffffff" if on_white > on_black else "#000000"


def confusion_matrix_svg(title: str, classes: list[str], matrix: list[list[int]]) -> str:
    """Rows are the true class, columns the predicted one; each cell is shaded by its share of the row."""
    cell, left, top = 44, 118, 104
    size = len(classes)
    # Column labels lean right over the next columns: the last one needs room beyond the grid.
    width, height = left + cell * size + 72, top + cell * size + 8
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left}" y="14" font-size="12" fill="{MUTED}">predicted →</text>',
        f'<text x="4" y="{top - 6}" font-size="12" fill="{MUTED}">true ↓</text>',
    ]
    for index, name in enumerate(classes):
        x = left + index * cell + cell / 2
        parts.append(
            f'<text x="{x}" y="{top - 8}" font-size="12" fill="{INK}" transform="rotate(-45 {x} {top - 8})">'
            f"<title>{escape(str(name))}</title>{escape(_short(name))}</text>"
        )
        y = top + index * cell + cell / 2 + 4
        parts.append(
            f'<text x="{left - 6}" y="{y}" font-size="12" fill="{INK}" text-anchor="end">'
            f"<title>{escape(str(name))}</title>{escape(_short(name))}</text>"
        )
    for row, counts in enumerate(matrix):
        total = sum(counts) or 1
        for column, count in enumerate(counts):
            fill, ink = _shade(count / total)
            x, y = left + column * cell, top + row * cell
            edge = INK if row == column else GRID
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="{edge}">'
                f"<title>true {escape(str(classes[row]))}, predicted {escape(str(classes[column]))}: "
                f"{int(count)}</title></rect>"
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 5}" font-size="14" fill="{ink}" '
                f'text-anchor="middle">{int(count)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def history_svg(history: list[dict[str, Any]], candidate: float | None) -> str:
    """Accuracy of each model the registry has put in production, oldest first, then the candidate."""
    points = [(str(i + 1), h.get("accuracy"), h.get("modelName", ""), "production") for i, h in enumerate(history)]
    if candidate is not None:
        points.append(("new", candidate, "this candidate", "candidate"))
    values = [float(v) for _, v, _, _ in points if v is not None]
    if not values:
        return "<p class=note id=history-empty>No model has been in production yet.</p>"
    low = max(0.0, min(min(values), 1.0) - 0.05)
    low = float(int(low * 10)) / 10  # a round lower edge: 0.8, not 0.8333
    width, height, left, right, top, bottom = 560, 240, 48, 16, 26, 40
    span_x = width - left - right
    span_y = height - top - bottom

    def y_of(value: float) -> float:
        return top + span_y * (1 - (value - low) / (1.0 - low))

    step = span_x / max(len(points), 1)
    parts, marks = [], []
    step_y = 0.05 if 1.0 - low <= 0.3 else 0.1
    for index in range(round((1.0 - low) / step_y) + 1):
        value = low + step_y * index
        y = y_of(value)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="12" fill="{INK}" text-anchor="end">{value:.2f}</text>'
        )
    line = []
    for index, (label, value, name, kind) in enumerate(points):
        x = left + step * index + step / 2
        marks.append(
            f'<text x="{x:.1f}" y="{height - bottom + 18}" font-size="12" fill="{INK}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
        if value is None:
            continue
        y = y_of(float(value))
        if kind == "production":
            line.append(f"{x:.1f},{y:.1f}")
            mark = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{PRODUCTION}">'
        else:
            mark = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#ffffff" stroke="{CANDIDATE}" stroke-width="3">'
        marks.append(f"{mark}<title>{escape(name)}: {float(value):.4f}</title></circle>")
        marks.append(
            f'<text x="{x:.1f}" y="{y - 10:.1f}" font-size="12" fill="{INK}" text-anchor="middle">'
            f"{float(value):.3f}</text>"
        )
    if len(line) > 1:
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{PRODUCTION}"/>')
    return (
        f'<svg role="img" aria-label="Accuracy of production models and the candidate" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(parts + marks)
        + f'<text x="{left}" y="{height - 4}" font-size="12" fill="{MUTED}">'
        "model version (1 = first in production)</text></svg>"
    )


def class_table(summary: dict[str, Any]) -> str:
    """Per class: test rows, both recalls and F1s, and the change; a class whose recall fell is marked."""
    candidate = (summary.get("candidate") or {}).get("perClass") or {}
    production = (summary.get("production") or {}).get("perClass") or {}
    deltas = summary.get("classDeltas") or {}
    rows = []
    for name, measured in candidate.items():
        before = production.get(name) or {}
        delta = (deltas.get(name) or {}).get("delta")
        if delta is not None and delta < 0:
            css, change = "down", f"▼ {delta:+.4f} (down)"
        elif delta is not None and delta > 0:
            css, change = "up", f"▲ {delta:+.4f}"
        else:
            css, change = "", "—" if delta is None else "0"
        rows.append(
            f'<tr class="{css}"><td>{escape(str(name))}</td><td>{int(measured.get("support", 0))}</td>'
            f"<td>{_number(measured.get('recall'))}</td><td>{_number(before.get('recall'))}</td>"
            f"<td>{change}</td><td>{_number(measured.get('f1'))}</td><td>{_number(before.get('f1'))}</td></tr>"
        )
    return (
        "<table id=class-deltas><tr><th>class</th><th>test rows</th><th>recall, candidate</th>"
        "<th>recall, production</th><th>change</th><th>F1, candidate</th><th>F1, production</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def data_summary(data: dict[str, Any]) -> str:
    """This run's data against the data production was trained on: rows, class balance, drift."""
    baseline = data.get("baseline") or {}
    ours, theirs = data.get("classBalance") or {}, baseline.get("classBalance") or {}
    balance = "".join(
        f"<tr><td>{escape(str(name))}</td><td>{_number(ours.get(name), 3)}</td>"
        f"<td>{_number(theirs.get(name), 3) if baseline else 'n/a'}</td></tr>"
        for name in sorted(set(ours) | set(theirs))
    )
    parts = [
        "<table id=data-rows><tr><th></th><th>this run</th><th>production's training data</th></tr>"
        f"<tr><td>training rows</td><td>{data.get('trainRows', 'n/a')}</td>"
        f"<td>{baseline.get('trainRows', 'n/a')}</td></tr>"
        f"<tr><td>test rows scored</td><td>{data.get('testRows', 'n/a')}</td><td></td></tr>"
        f"<tr><td>test rows production had trained on (left out)</td>"
        f"<td>{data.get('testRowsSeenByProduction', 'n/a')}</td><td></td></tr>"
        "<tr><th>class share</th><th></th><th></th></tr>" + balance + "</table>"
    ]
    drift = baseline.get("drift") or {}
    if drift:
        cells = []
        for name, measured in sorted(drift.items(), key=lambda item: -float(item[1].get("value", 0))):
            value = float(measured.get("value", 0))
            flag = ' class="drifted"' if value >= NOTABLE_DRIFT else ""
            note = " (shifted)" if value >= NOTABLE_DRIFT else ""
            cells.append(
                f"<tr><td>{escape(str(name))}</td><td>{escape(str(measured.get('statistic', '')))}</td>"
                f"<td{flag}>{value:.3f}{note}</td></tr>"
            )
        parts.append(
            "<table id=drift><tr><th>feature</th><th>drift statistic</th>"
            "<th>value (0 = same, 1 = disjoint)</th></tr>" + "".join(cells) + "</table>"
        )
    else:
        parts.append("<p class=note>No drift figures: there is no production model whose training data to compare.</p>")
    return "".join(parts)


def schema_change_list(change: dict[str, Any]) -> str:
    """What differs between production's columns and classes and the candidate's, one line per kind."""

    def names(values: list[Any]) -> str:
        return ", ".join(escape(str(v)) for v in values)

    lines = []
    if change.get("labelRenamed"):
        renamed = change["labelRenamed"]
        lines.append(
            f"label column renamed: {escape(str(renamed['production']))} → {escape(str(renamed['candidate']))}"
        )
    for key, text in (
        ("featuresAdded", "features only the candidate has"),
        ("featuresRemoved", "features only production has"),
        ("classesAdded", "classes new in this data"),
        ("classesRemoved", "classes production knows that this data lacks"),
    ):
        if change.get(key):
            lines.append(f"{text}: {names(change[key])}")
    for name, types in (change.get("featuresRetyped") or {}).items():
        lines.append(
            f"{escape(str(name))} was {escape(str(types['production']))}, is now {escape(str(types['candidate']))}"
        )
    for name, found in (change.get("newCategories") or {}).items():
        lines.append(f"new categories of {escape(str(name))}: {names(found)}")
    return "<ul id=schema-change>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>"


def _links(links: dict[str, Any]) -> str:
    items = []
    for label, key in (
        ("Training job", "trainingJob"),
        ("Model artifact (model.tar.gz)", "modelArtifacts"),
        ("Evaluation (evaluation.json)", "evaluation"),
        ("Test-set predictions", "predictions"),
    ):
        link = links.get(key) or {}
        if not link.get("name"):
            continue
        name = escape(str(link["name"]))
        shown = f'<a href="{escape(link["url"])}" rel="noreferrer">{name}</a>' if link.get("url") else name
        items.append(f"<li>{label}: {shown}</li>")
    return "<ul id=links>" + "".join(items) + "</ul>"


def evidence_section(evidence: dict[str, Any]) -> str:
    summary = evidence.get("summary") or {}
    classes = [str(c) for c in summary.get("classes") or []]
    candidate, production = summary.get("candidate") or {}, summary.get("production") or {}
    matrices = []
    for role, measured in (("Candidate", candidate), ("Production", production)):
        if measured.get("confusionMatrix") and classes:
            title = f"{role}: {measured.get('modelName', '')}"
            matrices.append(
                f"<figure id={role.lower()}-matrix><figcaption>{escape(title)}</figcaption>"
                f"{confusion_matrix_svg(title, classes, measured['confusionMatrix'])}</figure>"
            )
    if production.get("error"):
        matrices.append(f"<p class=note>Production was not scored: {escape(str(production['error']))}</p>")
    history = evidence.get("history") or []
    change = summary.get("schemaChange")
    parts = [
        f"<h2>Confusion matrices on the same {summary.get('testRows', 'n/a')} test rows</h2>",
        f"<div class=matrices>{''.join(matrices) or '<p class=note>No confusion matrix was recorded.</p>'}</div>",
        "<h2>Per class</h2>",
        class_table(summary),
        "<h2>Accuracy of the models in production</h2>",
        "<figure class=chart><figcaption>Each model on its own run's test rows; the hollow point is this "
        f"candidate on this run's.</figcaption>{history_svg(history, candidate.get('accuracy'))}</figure>",
    ]
    if change:
        parts += ["<h2>The candidate's schema differs from production's</h2>", schema_change_list(change)]
    parts += [
        "<h2>Data</h2>",
        data_summary(summary.get("data") or {}),
        "<h2>Links</h2>",
        _links(evidence.get("links") or {}),
    ]
    return "<section class=evidence>" + "".join(parts) + "</section>"
