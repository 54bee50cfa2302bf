"""A picture of an executed workflow (SVG): the ASL's states as boxes, coloured by how they ended.

The layout is a layered (Sugiyama) drawing computed by grandalf, in two parts:

* the states from which the run can still succeed, laid out top to bottom from StartAt;
* the failure path: the states from which every way on ends in a Fail state. They are laid out on their
  own in a lane on the right, and every hand-over into that lane (mostly Catch) is routed along a bus in the
  lane's gutter instead of across the drawing.

Catch edges are dashed red. States that ran are filled (green, or red on the failure path; orange where a
Catch took an error), the transitions the run took are drawn thick, and the state the run failed in is solid
red. Names are wrapped over two lines, never cut, and boxes are sized to them. The SVG is self-contained: no
scripts, no fonts beyond those installed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from html import escape
from itertools import pairwise
from pathlib import Path
from typing import Any

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout

from local_runtime.progress import StateRun

Point = tuple[float, float]
Key = tuple[str, str]  # (source, target) of a link

# fill, border, text; a state on the failure path that ran is tinted red rather than green
COLOURS = {
    "succeeded": ("#d7f2d0", "#1d8102", "#0f1b2a"),
    "ran on the failure path": ("#fbd9d4", "#d13212", "#0f1b2a"),
    "caught": ("#ffe9c7", "#b35c00", "#0f1b2a"),
    "failed": ("#d13212", "#8a1c0a", "#ffffff"),
    "running": ("#d9ecff", "#0972d3", "#0f1b2a"),
    "not run": ("#ffffff", "#aab4c0", "#4f5b69"),
}
NOT_RUN_FAILURE_BORDER = "#e3a49c"
GREY, RED, GREEN = "#8d99a8", "#d13212", "#1d8102"
LANE_FILL = "#fdf2f1"

FONT = "'DejaVu Sans', Verdana, Geneva, sans-serif"
NAME_SIZE, NOTE_SIZE = 12, 10
LINE_H, NOTE_H, PAD_X, PAD_Y = 15, 12, 12, 6
MAX_LINE_W = 185  # a name wider than this is wrapped over two lines
MIN_BOX_W = 110
X_SPACE, Y_SPACE = 28, 34
MARGIN, BUS_GAP, TRACK = 24, 11, 7

# Advance widths of DejaVu Sans Bold (Verdana Bold's are close) for ASCII 32..126, in hundredths of an em,
# measured in a browser. Names of states that ran are bold, so boxes are sized for bold text whether or not
# the state ran: the layout is the same for every execution. Anything outside ASCII counts as a full em.
_ADVANCES = (
    "35,46,52,84,70,100,87,31,46,46,52,84,38,42,38,37,70,70,70,70,70,70,70,70,70,70,40,40,84,84,84,58,100,77,76,"
    "73,83,68,68,82,84,37,37,77,64,100,84,85,73,85,77,72,68,81,77,110,77,72,73,46,37,46,84,50,50,67,72,59,72,68,"
    "44,72,71,34,34,67,34,104,71,69,72,72,49,60,48,71,65,92,65,65,58,71,37,71,84"
)
ADVANCES = [int(width) for width in _ADVANCES.split(",")]


def transitions(state: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, target) for every way a state can hand over: Next, Default, Choice[i], Catch[errors]."""
    handovers = [(key, state[key]) for key in ("Next", "Default") if key in state]
    handovers += [(f"Choice[{index}]", rule["Next"]) for index, rule in enumerate(state.get("Choices", []))]
    handovers += [(f"Catch{catcher['ErrorEquals']}", catcher["Next"]) for catcher in state.get("Catch", [])]
    return handovers


def text_width(text: str, size: float = NAME_SIZE) -> float:
    """Estimated rendered width in bold, with a little slack so that a wider fallback font still fits."""
    hundredths = sum(ADVANCES[ord(c) - 32] if 32 <= ord(c) < 127 else 100 for c in text)
    return hundredths * size / 100 * 1.04


def wrap(name: str) -> list[str]:
    """One line if it fits, otherwise two lines split at the space that balances them best."""
    words = name.split(" ")
    if text_width(name) <= MAX_LINE_W or len(words) == 1:
        return [name]
    splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
    return list(min(splits, key=lambda lines: max(text_width(line) for line in lines)))


@dataclass
class Link:
    """Every hand-over from one state to another, merged: Next and Catch to the same state are one link."""

    source: str
    target: str
    kinds: list[str] = field(default_factory=list)

    @property
    def catch(self) -> bool:
        return all(kind.startswith("Catch") for kind in self.kinds)

    @property
    def key(self) -> Key:
        return self.source, self.target


def links(definition: dict[str, Any]) -> list[Link]:
    merged: dict[Key, Link] = {}
    for name, state in definition["States"].items():
        for kind, target in transitions(state):
            merged.setdefault((name, target), Link(name, target)).kinds.append(kind)
    return list(merged.values())


def failure_side(definition: dict[str, Any]) -> set[str]:
    """States from which no successful end (Succeed, or End: true) can be reached: every way on fails."""
    states = definition["States"]
    incoming: dict[str, set[str]] = {name: set() for name in states}
    for link in links(definition):
        incoming[link.target].add(link.source)
    pending = [
        name
        for name, state in states.items()
        if state["Type"] == "Succeed" or (state.get("End") and state["Type"] != "Fail")
    ]
    can_succeed: set[str] = set()
    while pending:
        name = pending.pop()
        if name not in can_succeed:
            can_succeed.add(name)
            pending.extend(incoming[name])
    return set(states) - can_succeed - {definition["StartAt"]}


@dataclass
class Box:
    name: str
    lines: list[str]
    w: float
    h: float
    x: float = 0.0  # top left
    y: float = 0.0
    rank: int = 0
    failure: bool = False

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def make_box(name: str) -> Box:
    lines = wrap(name)
    widest = max(text_width(line) for line in lines)
    return Box(name, lines, max(MIN_BOX_W, widest + 2 * PAD_X), 2 * PAD_Y + len(lines) * LINE_H + NOTE_H)


class _View:
    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy = (0.0, 0.0)


@dataclass
class Layered:
    """A layered drawing of some states: boxes placed (relative to 0,0), the bends of long edges, layer bands."""

    bends: dict[Key, list[Point]]
    layers: dict[int, tuple[float, float]]  # top and bottom of the boxes in each layer
    width: float
    height: float
    in_layer: dict[int, list[Box]]


def sugiyama(boxes: dict[str, Box], edges: list[Key], roots: list[str]) -> Layered:
    """Places the boxes with grandalf's Sugiyama layout, their top left corner at (0, 0).

    grandalf lays out one connected graph at a time; when there are several parts, a hidden hub above their
    roots joins them, so that all parts share one set of layers.
    """
    vertices = {name: Vertex(name) for name in boxes}
    for name, vertex in vertices.items():
        vertex.view = _View(boxes[name].w, boxes[name].h)
    joined = {(s, t): Edge(vertices[s], vertices[t]) for s, t in edges if s != t}
    starts = _part_roots(list(boxes), list(joined), roots)
    hub_edges = []
    if len(starts) > 1:
        hub = Vertex(None)
        hub.view = _View(1, 0)
        vertices[""] = hub
        hub_edges = [Edge(hub, vertices[name]) for name in starts]
        starts = [""]
    graph = Graph(list(vertices.values()), [*joined.values(), *hub_edges])
    layout = SugiyamaLayout(graph.C[0])
    layout.xspace, layout.yspace = X_SPACE, Y_SPACE
    layout.dw, layout.dh = 12, 12  # the points that long edges bend through are thin
    edges_by_name = {**joined, **{("", e.v[1].data): e for e in hub_edges}}
    layout.init_all(
        roots=[vertices[name] for name in starts], inverted_edges=_back_edges(starts, edges_by_name, list(vertices))
    )
    layout.draw()
    bends = {}
    for key, edge in joined.items():
        if edge in layout.ctrls:
            ctrl = layout.ctrls[edge]
            ranks = sorted(r for r, v in ctrl.items() if not isinstance(v, Vertex))
            if layout.grx[edge.v[0]].rank > layout.grx[edge.v[1]].rank:
                ranks.reverse()
            bends[key] = [ctrl[r].view.xy for r in ranks]
    placed = [v for v in vertices.values() if v.data is not None]
    left = min([v.view.xy[0] - v.view.w / 2 for v in placed] + [x for bend in bends.values() for x, _ in bend])
    top = min(v.view.xy[1] - v.view.h / 2 for v in placed)
    layers: dict[int, list[Box]] = {}
    for v in placed:
        box = boxes[v.data]
        box.x, box.y = v.view.xy[0] - box.w / 2 - left, v.view.xy[1] - box.h / 2 - top
        box.rank = layout.grx[v].rank
        layers.setdefault(box.rank, []).append(box)
    bends = {key: [(x - left, y - top) for x, y in bend] for key, bend in bends.items()}
    bounds = {rank: (min(b.y for b in group), max(b.y + b.h for b in group)) for rank, group in layers.items()}
    width = max([b.x + b.w for b in boxes.values()] + [x for bend in bends.values() for x, _ in bend])
    height = max(b.y + b.h for b in boxes.values())
    return Layered(bends, bounds, width, height, layers)


def _part_roots(names: list[str], edges: list[Key], roots: list[str]) -> list[str]:
    """Where to start laying out each connected part: the given roots in it, else its states nothing enters."""
    part = {name: name for name in names}

    def find(name: str) -> str:
        while part[name] != name:
            name = part[name]
        return name

    for s, t in edges:
        part[find(s)] = find(t)
    entered = {t for _, t in edges}
    starts: dict[str, str] = {}
    for name in [*roots, *(n for n in names if n not in entered), *names]:
        if name in part:
            starts.setdefault(find(name), name)
    return list(starts.values())


def _back_edges(roots: list[str], edges: dict[Key, Edge], names: list[str]) -> list[Edge]:
    """The edges that close a loop, found depth-first from the roots in the definition's order."""
    children: dict[str, list[str]] = {name: [] for name in names}
    for s, t in edges:
        children[s].append(t)
    back: list[Edge] = []
    done: set[str] = set()
    for root in roots:
        on_path: list[str] = [root]
        stack = [iter(children[root])]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                done.add(on_path.pop())
            elif child in on_path:
                back.append(edges[(on_path[-1], child)])
            elif child not in done:
                on_path.append(child)
                stack.append(iter(children[child]))
    return back


@dataclass
class Line:
    """One drawn line: its points, its style and what it stands for."""

    points: list[Point]
    kind: str  # "normal"; "catch": dashed red; "failure": solid red, into or inside the failure lane
    taken: bool
    source: str = ""
    target: str = ""
    arrow: bool = True
    title: str = ""


@dataclass
class Picture:
    boxes: dict[str, Box]
    paths: list[Line]
    dots: list[tuple[float, float, bool]]  # where a link joins a bus; True when the run took it
    lane: tuple[float, float, float, float] | None  # x, y, w, h
    width: float
    height: float


def status_of(definition: dict[str, Any], runs: dict[str, StateRun]) -> dict[str, str]:
    """How each state ended in this run: not run, running, succeeded, caught (an error a Catch took) or failed."""
    order = taken_order(runs)
    last = order[-1] if order else None
    statuses = {}
    for name, state in definition["States"].items():
        run = runs.get(name)
        if run is None:
            statuses[name] = "not run"
        elif run.exited is None and state["Type"] != "Fail":
            statuses[name] = "running"
        elif state["Type"] == "Fail" or (run.error and name == last):
            statuses[name] = "failed"
        else:
            statuses[name] = run.status
    return statuses


def taken_order(runs: dict[str, StateRun]) -> list[str]:
    return [run.name for run in sorted(runs.values(), key=lambda run: run.entered)]


def taken_links(definition: dict[str, Any], runs: dict[str, StateRun]) -> set[Key]:
    """The hand-overs this run made: each state to the one entered right after it, where a link joins them."""
    known = {link.key for link in links(definition)}
    order = taken_order(runs)
    return {pair for pair in pairwise(order) if pair in known}


def layout(definition: dict[str, Any], taken: Collection[Key] = ()) -> Picture:
    """Places every state and routes every link; ``taken`` are the links to draw as taken."""
    states = definition["States"]
    doomed = failure_side(definition)
    all_links = links(definition)
    boxes = {name: make_box(name) for name in states}
    for name in doomed:
        boxes[name].failure = True
    main = {name: box for name, box in boxes.items() if name not in doomed}
    lane = {name: box for name, box in boxes.items() if name in doomed}
    inside = [link for link in all_links if (link.source in doomed) == (link.target in doomed)]
    across = [link for link in all_links if link.source not in doomed and link.target in doomed]

    top = 2 * MARGIN + 56  # under the title and the legend
    main_layout = sugiyama(main, [link.key for link in inside if link.source in main], [definition["StartAt"]])
    _move(main.values(), MARGIN, top)
    lines = _spread_ports(
        [
            _layered_line(link, boxes, main_layout.bends.get(link.key, []), (MARGIN, top), link.key in taken)
            for link in inside
            if link.source in main
        ],
        boxes,
    )
    if not lane:
        return Picture(boxes, lines, [], None, MARGIN + main_layout.width + MARGIN, top + main_layout.height + MARGIN)

    # The failure lane: a gutter right of everything in the main drawing, with a bus for each state that is
    # entered from outside the lane, then the lane's own layered drawing under the lowest link into it.
    bends = [point for bend in main_layout.bends.values() for point in bend]
    main_right = max([box.x + box.w for box in main.values()] + [x + MARGIN for x, _ in bends])
    lane_layout = sugiyama(lane, [link.key for link in inside if link.source in lane], [])
    targets = sorted({link.target for link in across}, key=lambda name: (-lane[name].rank, lane[name].x))
    bus_x = {name: main_right + (2 + i) * BUS_GAP for i, name in enumerate(targets)}
    lane_left = main_right + (3 + len(targets)) * BUS_GAP
    right_side_taken = {
        name
        for line in lines
        for name, (x, _) in ((line.source, line.points[0]), (line.target, line.points[-1]))
        if x == boxes[name].x + boxes[name].w
    }
    exits = _exits(across, boxes, main_layout, top, right_side_taken)
    turns: dict[int, list[str]] = {}
    for name in targets:
        if any(other.x < lane[name].x for other in lane_layout.in_layer[lane[name].rank]):
            turns.setdefault(lane[name].rank, []).append(name)  # entered from above, not from its left side
    first = min(lane_layout.layers)
    lane_top = max(points[-1][1] for points in exits.values()) + 2 * BUS_GAP + len(turns.get(first, [])) * TRACK
    _move(lane.values(), lane_left, lane_top)
    lines += _spread_ports(
        [
            _layered_line(link, boxes, lane_layout.bends.get(link.key, []), (lane_left, lane_top), link.key in taken)
            for link in inside
            if link.source in lane
        ],
        boxes,
    )
    dots: list[tuple[float, float, bool]] = []
    for name in targets:
        box, x = lane[name], bus_x[name]
        if name in turns.get(box.rank, []):
            waiting = turns[box.rank]
            step = min(TRACK, (Y_SPACE - 12) / len(waiting))
            turn_y = lane_top + lane_layout.layers[box.rank][0] - 6 - (waiting.index(name) + 1) * step
            end = [(x, turn_y), (box.cx, turn_y), (box.cx, box.y)]
        else:
            end = [(x, box.cy), (box.x, box.cy)]
        feeding = sorted((link for link in across if link.target == name), key=lambda link: exits[link.key][-1][1])
        for i, link in enumerate(feeding):
            y = exits[link.key][-1][1]
            lines.append(
                Line([*exits[link.key], (x, y)], _kind(link), link.key in taken, link.source, name, False, _title(link))
            )
            dots.append((x, y, link.key in taken))
            # The bus below this junction carries every link that joined it so far.
            joined = feeding[: i + 1]
            kind = "catch" if all(j.catch for j in joined) else "failure"
            bus_taken = any(j.key in taken for j in joined)
            if i + 1 < len(feeding):
                lines.append(Line([(x, y), (x, exits[feeding[i + 1].key][-1][1])], kind, bus_taken, arrow=False))
            else:
                lines.append(Line([(x, y), *end], kind, bus_taken, target=name))
    width = lane_left + lane_layout.width + MARGIN
    height = max(top + main_layout.height, lane_top + lane_layout.height) + MARGIN
    lane_area = (
        main_right + BUS_GAP,
        top - 30,
        width - MARGIN / 2 - main_right - BUS_GAP,
        height - top + 30 - MARGIN / 2,
    )
    return Picture(boxes, lines, dots, lane_area, width, height)


def _move(boxes: Iterable[Box], dx: float, dy: float) -> None:
    for box in boxes:
        box.x += dx
        box.y += dy


def _kind(link: Link) -> str:
    return "catch" if link.catch else "failure"


def _exits(
    across: list[Link], boxes: dict[str, Box], layered: Layered, top: float, right_side_taken: set[str]
) -> dict[Key, list[Point]]:
    """Where each link into the lane leaves its state, up to the height at which it runs right to its bus.

    A state that nothing stands right of in its layer sends one such link out of its right side (unless a loop
    already uses that side); any other goes down into the gap under the layer, on a track of its own there, so
    that no line runs through a box.
    """
    exits: dict[Key, list[Point]] = {}
    down: dict[int, list[Link]] = {}
    for link in sorted(across, key=lambda link: (boxes[link.source].rank, -boxes[link.source].x)):
        box = boxes[link.source]
        rightmost = all(other.x <= box.x for other in layered.in_layer[box.rank])
        if rightmost and link.source not in right_side_taken and not any(key[0] == link.source for key in exits):
            exits[link.key] = [(box.x + box.w, box.cy)]
        else:
            down.setdefault(box.rank, []).append(link)
    for rank, group in down.items():
        step = min(TRACK, (Y_SPACE - 12) / len(group))
        for track, link in enumerate(group, start=1):
            box = boxes[link.source]
            x = box.x + box.w - 10 - 6 * sum(1 for other in group[: track - 1] if other.source == link.source)
            exits[link.key] = [(x, box.y + box.h), (x, top + layered.layers[rank][1] + 4 + track * step)]
    return exits


def _title(link: Link) -> str:
    return f"{link.source} → {link.target}: {', '.join(link.kinds)}"


def _layered_line(link: Link, boxes: dict[str, Box], bends: list[Point], shift: Point, taken: bool) -> Line:
    source, target = boxes[link.source], boxes[link.target]
    middle = [(x + shift[0], y + shift[1]) for x, y in bends]
    if link.source == link.target:  # a state that hands over to itself: a small loop on its right
        right = source.x + source.w
        points = [(right, source.cy - 6), (right + 18, source.cy - 6), (right + 18, source.cy + 6)]
        points.append((right, source.cy + 6))
    elif target.rank > source.rank:
        points = [(source.cx, source.y + source.h), *middle, (target.cx, target.y)]
    elif middle:  # a loop back up, through the places the layout kept for it in the layers between
        points = [(source.cx, source.y), *middle, (target.cx, target.y + target.h)]
    else:  # a loop back up to the layer just above: round the right of both boxes
        out = max(source.x + source.w, target.x + target.w) + 14
        points = [
            (source.x + source.w, source.cy),
            (out, source.cy),
            (out, target.cy),
            (target.x + target.w, target.cy),
        ]
    kind = "catch" if link.catch else ("failure" if target.failure else "normal")
    return Line(points, kind, taken, link.source, link.target, True, _title(link))


def _spread_ports(lines: list[Line], boxes: dict[str, Box]) -> list[Line]:
    """Lines that meet a box at the middle of its top (or bottom) get points of their own along that side,
    in the order of where they come from, so that they neither overlap nor cross just at the box."""
    sides: dict[tuple[str, float], list[tuple[Line, int]]] = {}
    for line in lines:
        for name, end in ((line.source, 0), (line.target, -1)):
            box = boxes[name]
            x, y = line.points[end]
            if x == box.cx and y in (box.y, box.y + box.h):
                sides.setdefault((name, y), []).append((line, end))
    for (name, y), group in sides.items():
        box = boxes[name]
        group.sort(key=lambda item: item[0].points[1 if item[1] == 0 else -2][0])
        for i, (line, end) in enumerate(group):
            line.points[end] = (box.x + box.w * (0.2 + 0.6 * (i + 1) / (len(group) + 1)), y)
    return lines


def render_svg(definition: dict[str, Any], runs: dict[str, StateRun], title: str) -> str:
    taken = taken_links(definition, runs)
    picture = layout(definition, taken)
    statuses = status_of(definition, runs)
    legend, legend_right = _legend(MARGIN, MARGIN + 30)
    width = max(picture.width, legend_right + MARGIN, text_width(title, 17) + 2 * MARGIN)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{picture.height:.0f}" '
        f'viewBox="0 0 {width:.0f} {picture.height:.0f}" font-family="{FONT}" font-size="{NAME_SIZE}">',
        "<defs>",
        *(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="{size}" '
            f'markerHeight="{size}" markerUnits="userSpaceOnUse" orient="auto">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
            for name, colour, size in (("grey", GREY, 9), ("red", RED, 9), ("green", GREEN, 11), ("redtaken", RED, 11))
        ),
        "</defs>",
        f'<rect width="{width:.0f}" height="{picture.height:.0f}" fill="#ffffff"/>',
        f'<text x="{MARGIN}" y="{MARGIN + 8}" font-size="17" font-weight="bold" fill="#0f1b2a">{escape(title)}</text>',
        legend,
    ]
    if picture.lane:
        x, y, w, h = picture.lane
        parts.append(
            f'<rect class="failure-lane" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="8" '
            f'fill="{LANE_FILL}"/>'
            f'<text x="{x + 12:.1f}" y="{y + 18:.1f}" font-size="13" font-weight="bold" fill="{RED}">'
            "Failure path</text>"
        )
    # Lines the run did not take go under those it took.
    for path in sorted(picture.paths, key=lambda p: p.taken):
        parts.append(_path_svg(path))
    for x, y, taken in picture.dots:
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{3.5 if taken else 2.5}" fill="{RED}"/>')
    for name, box in picture.boxes.items():
        parts.append(_box_svg(box, statuses[name], runs.get(name)))
    parts.append("</svg>")
    return "\n".join(parts)


def _path_svg(path: Line) -> str:
    colour = GREY if path.kind == "normal" else RED
    if path.taken:
        colour = GREEN if path.kind == "normal" else RED
    width = 2.6 if path.taken else 1.3
    opacity = 1 if path.taken else (0.75 if path.kind == "normal" else 0.6)
    dash = ' stroke-dasharray="6 4"' if path.kind == "catch" else ""
    marker = ""
    if path.arrow:
        arrow = (
            ("green" if path.kind == "normal" else "redtaken") if path.taken else ("grey" if colour == GREY else "red")
        )
        marker = f' marker-end="url(#arrow-{arrow})"'
    d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in path.points)
    classes = " ".join(["edge", path.kind, *(["taken"] if path.taken else [])])
    data = f' data-from="{escape(path.source)}"' if path.source else ""
    data += f' data-to="{escape(path.target)}"' if path.target else ""
    title = f"<title>{escape(path.title)}</title>" if path.title else ""
    return (
        f'<path class="{classes}"{data} d="{d}" fill="none" stroke="{colour}" stroke-width="{width}" '
        f'stroke-opacity="{opacity}" stroke-linejoin="round"{dash}{marker}>{title}</path>'
    )


def _box_svg(box: Box, status: str, run: StateRun | None) -> str:
    fill, border, ink = COLOURS["ran on the failure path" if status == "succeeded" and box.failure else status]
    if status == "not run" and box.failure:
        border = NOT_RUN_FAILURE_BORDER
    stroke = {"failed": 3, "not run": 1.2}.get(status, 2)
    seconds = f"{run.seconds:.1f} s" if run and run.seconds and run.seconds >= 0.05 else ""
    note = {"failed": "failed", "caught": "caught", "running": "running"}.get(status, "")
    note = " · ".join(part for part in (note, seconds) if part)
    detail = f" ({run.error})" if run and run.error else ""
    tooltip = f"{box.name}: {status}{detail}" + (f" ({seconds})" if seconds else "")
    # The name sits at the top when a note line follows it, in the middle otherwise.
    text_top = box.y + (PAD_Y if note else (box.h - len(box.lines) * LINE_H) / 2) + LINE_H - 3.5
    lines = "".join(
        f'<tspan x="{box.cx:.1f}" y="{text_top + i * LINE_H:.1f}">{escape(line)}</tspan>'
        for i, line in enumerate(box.lines)
    )
    classes = " ".join(["state", status.replace(" ", "-"), *(["failure-path"] if box.failure else [])])
    weight = ' font-weight="bold"' if status != "not run" else ""
    note_svg = (
        f'<text x="{box.cx:.1f}" y="{box.y + box.h - PAD_Y - 2:.1f}" text-anchor="middle" font-size="{NOTE_SIZE}" '
        f'fill="{ink}">{escape(note)}</text>'
        if note
        else ""
    )
    return (
        f'<g class="{classes}" data-state="{escape(box.name)}"><title>{escape(tooltip)}</title>'
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="6" '
        f'fill="{fill}" stroke="{border}" stroke-width="{stroke}"/>'
        f'<text class="name" text-anchor="middle" fill="{ink}"{weight}>{lines}</text>{note_svg}</g>'
    )


def _legend(x: float, y: float) -> tuple[str, float]:
    """The key to the colours and lines, and where it ends on the right."""
    items = []
    for label, status in (
        ("ran", "succeeded"),
        ("caught an error", "caught"),
        ("ran on the failure path", "ran on the failure path"),
        ("failed", "failed"),
        ("did not run", "not run"),
    ):
        fill, border, _ = COLOURS[status]
        items.append(
            f'<rect x="{x:.0f}" y="{y - 10:.0f}" width="14" height="14" rx="3" fill="{fill}" stroke="{border}" '
            f'stroke-width="1.5"/><text x="{x + 20:.0f}" y="{y + 1:.0f}" fill="#2a3441" font-size="11">{label}</text>'
        )
        x += 28 + text_width(label, 11)
    for label, colour, dash, width in (
        ("transition taken", GREEN, "", 2.6),
        ("not taken", GREY, "", 1.3),
        ("Catch (error handler)", RED, ' stroke-dasharray="6 4"', 1.3),
    ):
        items.append(
            f'<line x1="{x:.0f}" y1="{y - 3:.0f}" x2="{x + 28:.0f}" y2="{y - 3:.0f}" stroke="{colour}" '
            f'stroke-width="{width}"{dash}/><text x="{x + 34:.0f}" y="{y + 1:.0f}" fill="#2a3441" font-size="11">'
            f"{label}</text>"
        )
        x += 46 + text_width(label, 11)
    return f'<g class="legend">{"".join(items)}</g>', x


def write_svg(definition: dict[str, Any], runs: dict[str, StateRun], title: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_svg(definition, runs, title))
    return path
