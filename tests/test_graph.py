"""The execution picture: every name readable, no box on another, failure paths apart, the run's path standing out."""

from __future__ import annotations

import copy
import itertools
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Any

import pipeline
import pytest
from asl import load_definition

from local_runtime.graph import RED, failure_side, links, render_svg, text_width, write_svg
from local_runtime.progress import StateRun

SVG = "{http://www.w3.org/2000/svg}"

# A first deployment: the endpoint does not exist yet, so looking it up fails and that Catch creates it.
DEPLOYED = [
    "Check run input",
    "Claim data version",
    "Take pipeline lock",
    "Prepare data",
    "Train candidate model",
    "Find production model",
    "Is a model in production?",
    "Score the candidate on the test set",
    "Apply the accuracy gate",
    "Is the candidate good enough?",
    "Create scoring model",
    "Score test set",
    "Wait for approval",
    "Does the approval name its record?",
    "Confirm the recorded approval",
    "Create serving model",
    "Create endpoint config",
    "Look up live endpoint",
    "Create endpoint",
    "Wait for endpoint",
    "Check endpoint status",
    "Is the endpoint live?",
    "Register production model",
    "Was another model in production?",
    "Point registry at new model",
    "Model deployed",
    "Release pipeline lock",
    "Notify outcome",
    "Report outcome",
    "Run finished",
]
TRAINING_FAILED = [*DEPLOYED[:5], *pipeline.FAILURE_TAIL]
FUNNEL = set(pipeline.FAILURE_TAIL)


def ran(definition: dict[str, Any], path: list[str], errors: dict[str, str] | None = None) -> dict[str, StateRun]:
    start = datetime(2026, 1, 1)
    runs = {}
    for i, name in enumerate(path):
        entered = start + timedelta(seconds=3 * i)
        error = (errors or {}).get(name)
        runs[name] = StateRun(name, definition["States"][name]["Type"], entered, entered + timedelta(seconds=2), error)
    return runs


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own picture)


def state_groups(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-state"): g for g in root.iter(f"{SVG}g") if "state" in g.get("class", "").split()}


def rect(group: ET.Element) -> tuple[float, float, float, float]:
    r = group.find(f"{SVG}rect")
    return tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def edges(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if "edge" in p.get("class", "").split()]


def points(path: ET.Element) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", path.get("d"))]


def crosses(a: tuple[float, float], b: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    """Whether segment a-b passes through the inside of the box (shrunk by a pixel: touching is fine)."""
    x, y, w, h = box[0] + 1, box[1] + 1, box[2] - 2, box[3] - 2
    t0, t1 = 0.0, 1.0
    dx, dy = b[0] - a[0], b[1] - a[1]
    for p, q in ((-dx, a[0] - x), (dx, x + w - a[0]), (-dy, a[1] - y), (dy, y + h - a[1])):
        if p == 0:
            if q < 0:
                return False
        else:
            t = q / p
            if p < 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
    return t0 < t1


def renamed_definition() -> dict[str, Any]:
    """The definition with a state renamed and one added, to show that nothing is hard-coded."""
    definition = copy.deepcopy(load_definition())
    states = definition["States"]
    states["Build the scoring model"] = states.pop("Create scoring model")
    for state in states.values():
        for rule in state.get("Choices", []):
            if rule["Next"] == "Create scoring model":
                rule["Next"] = "Build the scoring model"
    audit = copy.deepcopy(states["Create serving model"])
    audit["Next"] = states["Create serving model"]["Next"]
    states["Create serving model"]["Next"] = "Record the serving model for audit"
    states["Record the serving model for audit"] = audit
    return definition


def parted_definition() -> dict[str, Any]:
    """Two failure paths that never meet, a loop, and a state nothing reaches: layouts of several parts."""
    return {
        "StartAt": "Begin with a state whose name is far too long for one line",
        "States": {
            "Begin with a state whose name is far too long for one line": {
                "Type": "Task",
                "Resource": "x",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "First failure"}],
                "Next": "Poll",
            },
            "Poll": {
                "Type": "Task",
                "Resource": "x",
                "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Second failure"}],
                "Next": "Done?",
            },
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": "Finished"}],
                "Default": "Poll",
            },
            "Finished": {"Type": "Succeed"},
            "First failure": {"Type": "Fail"},
            "Second failure": {"Type": "Fail"},
            "Nothing reaches me": {"Type": "Pass", "End": True},
        },
    }


DEFINITIONS = {"current": load_definition, "renamed": renamed_definition, "parted": parted_definition}


@pytest.fixture(params=sorted(DEFINITIONS))
def definition(request) -> dict[str, Any]:
    return DEFINITIONS[request.param]()


@pytest.fixture(params=["current", "renamed"])
def mlops_definition(request) -> dict[str, Any]:
    return DEFINITIONS[request.param]()


def test_every_state_name_is_written_in_full_in_its_box(definition) -> None:
    groups = state_groups(parse(render_svg(definition, {}, "t")))
    assert set(groups) == set(definition["States"])
    for name, group in groups.items():
        lines = [t.text for t in group.iter(f"{SVG}tspan")]
        assert " ".join(lines) == name
        assert len(lines) <= 2
        _, _, width, _ = rect(group)
        assert all(text_width(line) < width for line in lines), name
    assert "…" not in render_svg(definition, {}, "t")


def test_no_two_state_boxes_overlap(definition) -> None:
    boxes = {name: rect(group) for name, group in state_groups(parse(render_svg(definition, {}, "t"))).items()}
    for (a, (ax, ay, aw, ah)), (b, (bx, by, bw, bh)) in itertools.combinations(boxes.items(), 2):
        apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
        assert apart, f"{a} overlaps {b}"


def test_no_line_runs_through_a_box(definition) -> None:
    root = parse(render_svg(definition, {}, "t"))
    boxes = {name: rect(group) for name, group in state_groups(root).items()}
    for path in edges(root):
        for a, b in itertools.pairwise(points(path)):
            through = [name for name, box in boxes.items() if crosses(a, b, box)]  # its own ends' boxes too
            assert not through, f"{path.get('data-from')} -> {path.get('data-to')} runs through {through}"


def test_catch_edges_are_dashed_red_and_other_edges_are_not(definition) -> None:
    root = parse(render_svg(definition, {}, "t"))
    drawn = {(p.get("data-from"), p.get("data-to")): p for p in edges(root) if p.get("data-from")}
    for link in links(definition):
        path = drawn[link.key]
        catch_only = all(kind.startswith("Catch") for kind in link.kinds)
        assert ("catch" in path.get("class").split()) == catch_only, link
        assert (path.get("stroke-dasharray") is not None) == catch_only, link
        if catch_only:
            assert path.get("stroke") == RED


def test_the_failure_path_is_derived_from_the_definition_and_drawn_in_a_lane_right_of_the_rest(
    mlops_definition,
) -> None:
    definition = mlops_definition
    doomed = failure_side(definition)
    assert doomed >= FUNNEL | {"Approval not on record", "Deployment did not go live"}
    assert not doomed & {"Check run input", "Model rejected", "Review expired", "Not promoted", "Run finished"}
    root = parse(render_svg(definition, {}, "t"))
    groups = state_groups(root)
    lane = next(r for r in root.iter(f"{SVG}rect") if r.get("class") == "failure-lane")
    lane_left = float(lane.get("x"))
    for name, group in groups.items():
        x, _, w, _ = rect(group)
        assert ("failure-path" in group.get("class").split()) == (name in doomed)
        assert x > lane_left if name in doomed else x + w < lane_left, name


def test_a_deployed_run_highlights_its_states_and_transitions_and_nothing_else() -> None:
    definition = load_definition()
    runs = ran(definition, DEPLOYED, {"Look up live endpoint": "States.TaskFailed"})
    root = parse(render_svg(definition, runs, "deployed"))
    for name, group in state_groups(root).items():
        fill = group.find(f"{SVG}rect").get("fill")
        weight = group.find(f"{SVG}text").get("font-weight")
        if name in DEPLOYED:
            assert fill != "#ffffff" and weight == "bold", name
        else:
            assert "not-run" in group.get("class").split() and fill == "#ffffff" and weight is None, name
    assert "caught" in state_groups(root)["Look up live endpoint"].get("class").split()
    taken = {(p.get("data-from"), p.get("data-to")) for p in edges(root) if "taken" in p.get("class").split()}
    assert taken == set(itertools.pairwise(DEPLOYED))
    look_up = next(
        p for p in edges(root) if p.get("data-from") == "Look up live endpoint" and "taken" in p.get("class")
    )
    assert "catch" in look_up.get("class") and float(look_up.get("stroke-width")) > 2
    assert not any(g for g in state_groups(root).values() if "failed" in g.get("class").split())


def test_a_failed_run_marks_the_failed_state_and_its_way_through_the_failure_lane() -> None:
    definition = load_definition()
    runs = ran(definition, TRAINING_FAILED, {"Train candidate model": "SageMaker.Failed", "Run failed": "x"})
    svg = render_svg(definition, runs, "failed")
    root = parse(svg)
    groups = state_groups(root)
    assert "failed" in groups["Run failed"].get("class").split()
    assert "Run failed: failed" in svg and "Train candidate model: caught (SageMaker.Failed)" in svg
    for name in FUNNEL - {"Run failed"}:
        assert "succeeded" in groups[name].get("class").split()
        assert groups[name].find(f"{SVG}rect").get("stroke") == RED  # ran, but on the failure path
    taken = [p for p in edges(root) if "taken" in p.get("class").split()]
    into_lane = [p for p in taken if p.get("data-from") == "Train candidate model"]
    assert into_lane and all("catch" in p.get("class") for p in into_lane)
    # The bus from that Catch down to the funnel is drawn taken too, ending at the funnel's first state.
    assert any(p.get("data-to") == "Give back data claim after failure" and not p.get("data-from") for p in taken)


def test_a_state_that_failed_without_a_catch_is_marked_failed() -> None:
    definition = load_definition()
    runs = ran(definition, DEPLOYED[:3], {"Take pipeline lock": "States.Runtime"})
    groups = state_groups(parse(render_svg(definition, runs, "t")))
    assert "failed" in groups["Take pipeline lock"].get("class").split()
    assert "succeeded" in groups["Claim data version"].get("class").split()


def test_the_picture_is_self_contained(tmp_path) -> None:
    definition = load_definition()
    path = write_svg(definition, ran(definition, DEPLOYED), "Round 1: <deployed> & done", tmp_path / "r" / "x.svg")
    svg = path.read_text()
    root = parse(svg)  # well-formed, the title escaped
    assert root.tag == f"{SVG}svg"
    assert (
        "<script" not in svg
        and "@import" not in svg
        and "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert set(re.findall(r"url\(([^)]*)\)", svg)) <= {"#arrow-grey", "#arrow-red", "#arrow-green", "#arrow-redtaken"}


def test_failure_paths_that_never_meet_both_go_in_the_lane() -> None:
    definition = parted_definition()
    assert failure_side(definition) == {"First failure", "Second failure"}
    root = parse(render_svg(definition, {}, "t"))
    lane = next(r for r in root.iter(f"{SVG}rect") if r.get("class") == "failure-lane")
    groups = state_groups(root)
    assert all(rect(groups[name])[0] > float(lane.get("x")) for name in ("First failure", "Second failure"))


def test_a_definition_without_a_failure_path_or_with_a_loop_on_itself_still_draws() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "BooleanEquals": True, "Next": "B"}],
                "Default": "C",
            },
            "C": {"Type": "Succeed"},
        },
    }
    root = parse(render_svg(definition, {}, "t"))
    assert set(state_groups(root)) == {"A", "B", "C"}
    assert not [r for r in root.iter(f"{SVG}rect") if r.get("class") == "failure-lane"]
