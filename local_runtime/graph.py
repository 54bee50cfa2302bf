"""A picture of an executed workflow: the ASL's states as boxes, coloured by how they ended (SVG)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from local_runtime.progress import StateRun

COLOURS = {
    "succeeded": ("#d3f1cd", "#1d8102"),
    "caught": ("#fde2e0", "#d13212"),
    "failed": ("#fde2e0", "#d13212"),
    "running": ("#d1e8ff", "#0972d3"),
    "not run": ("#f2f3f3", "#aab7b8"),
}
BOX_W, BOX_H, GAP_X, GAP_Y = 210, 34, 24, 30


def transitions(state: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, target) for every way a state can hand over: Next, Default, Choice[i], Catch[errors]."""
    handovers = [(key, state[key]) for key in ("Next", "Default") if key in state]
    handovers += [(f"Choice[{index}]", rule["Next"]) for index, rule in enumerate(state.get("Choices", []))]
    handovers += [(f"Catch{catcher['ErrorEquals']}", catcher["Next"]) for catcher in state.get("Catch", [])]
    return handovers


def layers(definition: dict[str, Any]) -> dict[str, int]:
    """Row of each state: its longest distance from StartAt, ignoring the edges that close loops."""
    states = definition["States"]
    order: list[str] = []
    back_edges: set[tuple[str, str]] = set()
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> None:
        on_path.add(name)
        for _, target in transitions(states[name]):
            if target in on_path:
                back_edges.add((name, target))
            elif target not in done:
                visit(target)
        on_path.discard(name)
        done.add(name)
        order.append(name)

    visit(definition["StartAt"])
    depth = dict.fromkeys(order, 0)
    for name in reversed(order):  # reverse post-order is a topological order without back edges
        for _, target in transitions(states[name]):
            if (name, target) not in back_edges:
                depth[target] = max(depth[target], depth[name] + 1)
    return depth


def render_svg(definition: dict[str, Any], runs: dict[str, StateRun], title: str) -> str:
    depth = layers(definition)
    rows: dict[int, list[str]] = {}
    for name in definition["States"]:
        rows.setdefault(depth.get(name, max(depth.values()) + 1), []).append(name)
    widest = max(len(names) for names in rows.values())
    width = widest * (BOX_W + GAP_X) + GAP_X
    height = (max(rows) + 1) * (BOX_H + GAP_Y) + GAP_Y + 40
    position = {}
    for row, names in rows.items():
        offset = (width - len(names) * (BOX_W + GAP_X) + GAP_X) / 2
        for index, name in enumerate(names):
            position[name] = (offset + index * (BOX_W + GAP_X), 40 + GAP_Y + row * (BOX_H + GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        'font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#687078"/></marker></defs>',
        f'<text x="{GAP_X}" y="26" font-size="16" font-weight="bold">{escape(title)}</text>',
    ]
    for name, state in definition["States"].items():
        x, y = position[name]
        for kind, target in transitions(state):
            is_error = kind.startswith("Catch")
            tx, ty = position[target]
            taken = name in runs and target in runs
            colour = "#d13212" if is_error else "#687078"
            dash = ' stroke-dasharray="4 3"' if is_error else ""
            opacity = "1" if taken else ("0.12" if is_error else "0.35")
            parts.append(
                f'<line x1="{x + BOX_W / 2:.0f}" y1="{y + BOX_H:.0f}" x2="{tx + BOX_W / 2:.0f}" y2="{ty:.0f}" '
                f'stroke="{colour}" stroke-opacity="{opacity}"{dash} marker-end="url(#arrow)"/>'
            )
    for name in definition["States"]:
        x, y = position[name]
        run = runs.get(name)
        status = run.status if run else "not run"
        if run and definition["States"][name]["Type"] == "Fail":
            status = "failed"
        fill, stroke = COLOURS[status]
        label = name if len(name) <= 30 else name[:29] + "…"
        seconds = f" ({run.seconds:.1f}s)" if run and run.seconds and run.seconds >= 0.05 else ""
        parts.append(
            f"<g><title>{escape(name)}: {status}{escape(seconds)}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + BOX_H / 2 + 4:.0f}" text-anchor="middle">'
            f"{escape(label + seconds)}</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def write_svg(definition: dict[str, Any], runs: dict[str, StateRun], title: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_svg(definition, runs, title))
    return path
