"""tests/asl_jsonata.py, the checker of JSONata, query-language fields and variables: each rule catches the
mistake it is for, a sound definition passes, and statemachine/mlops.asl.json passes in whichever query
language it declares."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest
from asl import load_definition
from asl_jsonata import check_definition

LAMBDA = "arn:aws:states:::lambda:invoke"


def _machine(*states: tuple[str, dict[str, Any]], language: str = "JSONata") -> dict[str, Any]:
    """A definition whose states run in the order given; the last one ends the run."""
    named = [(name, dict(state)) for name, state in states]
    for (_, state), (following, _) in pairwise(named):
        if state["Type"] not in ("Choice", "Succeed", "Fail"):
            state.setdefault("Next", following)
    last = named[-1][1]
    if last["Type"] not in ("Choice", "Succeed", "Fail") and "Next" not in last:
        last["End"] = True
    return {"QueryLanguage": language, "StartAt": named[0][0], "States": dict(named)}


def _task(**fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": LAMBDA, "Arguments": {"FunctionName": "train"}, **fields}


def _problems_mentioning(definition: dict[str, Any], text: str) -> list[str]:
    return [problem for problem in check_definition(definition) if text in problem]


# ---------------------------------------------------------------- a sound definition
def test_a_correct_jsonata_definition_has_no_problems() -> None:
    score_one_row = {
        "StartAt": "Score one row",
        "States": {
            "Score one row": {"Type": "Pass", "Assign": {"score": "{% $states.input.row.x %}"},
                              "Output": {"verdict": "{% $verdict %}", "xs": "{% $map($rows, function($r){$r.x}) %}"},
                              "Next": "Keep score"},
            "Keep score": {"Type": "Succeed", "Output": "{% $score %}"},
        },
    }  # fmt: skip
    definition = _machine(
        ("Start run", {"Type": "Pass", "Assign": {"runId": "{% $uuid() %}", "rows": "{% $states.input.rows %}"}}),
        ("Train candidate model", _task(
            Arguments={"FunctionName": "train", "Payload": {"name": "{% 'train-' & $runId %}",
                                                           "rows": "{% $sum($rows.count) %}"}},
            TimeoutSeconds="{% $states.input.timeout %}",
            Assign={"modelUri": "{% $states.result.Payload.uri %}"},
            Output="{% $states.result.Payload %}",
            Catch=[{"ErrorEquals": ["States.ALL"], "Assign": {"failure": "{% $states.errorOutput %}"},
                    "Output": "{% $states.errorOutput %}", "Next": "Run failed"}],
        )),
        ("Is it good enough?", {"Type": "Choice", "Default": "Run failed", "Choices": [
            {"Condition": "{% $states.input.accuracy >= 0.9 %}", "Assign": {"verdict": "good"}, "Next": "Score"}]}),
        ("Score", {"Type": "Map", "Items": "{% $rows %}", "MaxConcurrency": "{% $count($rows) %}",
                   "ItemSelector": {"row": "{% $states.context.Map.Item.Value %}", "model": "{% $modelUri %}"},
                   "ItemProcessor": score_one_row,
                   "Output": {"mean": "{% ($total := $sum($states.result); $total / $count($rows)) %}"}}),
        ("Wait a little", {"Type": "Wait", "Seconds": "{% $random() < 2 ? 1 : 2 %}"}),
        ("Run succeeded", {"Type": "Succeed", "Output": {"run": "{% $runId %}", "model": "{% $modelUri %}"}}),
    )  # fmt: skip
    definition["States"]["Run failed"] = {"Type": "Fail", "Error": "{% $failure.Error %}", "Cause": "{% $runId %}"}
    assert check_definition(definition) == []


def test_a_variable_assigned_before_a_loop_and_in_it_is_seen_on_every_pass() -> None:
    definition = _machine(
        ("Count", {"Type": "Pass", "Assign": {"tries": "{% $exists($tries) ? $tries + 1 : 1 %}"}}),
        ("Again?", {"Type": "Choice", "Default": "Done",
                    "Choices": [{"Condition": "{% $tries < 3 %}", "Next": "Count"}]}),
        ("Done", {"Type": "Succeed"}),
    )  # fmt: skip
    # $tries is read in "Count" before any state assigns it on the first pass: a may-analysis sees the
    # assignment along the loop, and $exists guards the first pass, so this is not reported.
    assert check_definition(definition) == []


# ---------------------------------------------------------------- expressions parse
def test_a_jsonata_syntax_error_is_reported_with_its_state_and_field() -> None:
    definition = _machine(("Train candidate model", _task(Arguments={"Payload": {"rows": "{% $sum(rows %}"}})))
    (problem,) = check_definition(definition)
    assert problem.startswith("State 'Train candidate model', Arguments.Payload.rows: JSONata does not parse")


@pytest.mark.parametrize("text", [" {% 1 %}", "{% 1 %} ", "{% 1", "1 %}"])
def test_a_half_open_jsonata_string_is_reported(text) -> None:
    definition = _machine(("Start run", {"Type": "Pass", "Output": {"x": text}}))
    assert check_definition(definition) == [
        "State 'Start run', Output.x: a JSONata string must start with {% and end with %}, no spaces outside"
    ]


def test_a_definition_substitution_inside_an_expression_parses() -> None:
    definition = _machine(("Wait for endpoint", {"Type": "Wait", "Seconds": "{% ${StatusPollSeconds} * 2 %}"}))
    assert check_definition(definition) == []


def test_the_resource_of_a_task_cannot_be_an_expression() -> None:
    definition = _machine(("Train candidate model", _task(Resource="{% $states.input.arn %}")))
    assert check_definition(definition) == [
        "State 'Train candidate model', Resource: Resource must be a constant, not a JSONata expression"
    ]


def test_eval_and_unknown_functions_are_reported() -> None:
    definition = _machine(("Start run", {"Type": "Pass", "Output": {"a": "{% $eval('1') %}", "b": "{% $sumx(1) %}"}}))
    assert check_definition(definition) == [
        "State 'Start run', Output.a: $eval is not available in Step Functions; use $parse",
        "State 'Start run', Output.b: unknown function $sumx()",
    ]


# ---------------------------------------------------------------- fields per query language
@pytest.mark.parametrize(
    ("field", "value"),
    [("Parameters", {"a.$": "$.a"}), ("ResultPath", "$.result"), ("ResultSelector", {"a.$": "$.a"}),
     ("InputPath", "$.a"), ("OutputPath", "$.a"), ("TimeoutSecondsPath", "$.timeout"),
     ("HeartbeatSecondsPath", "$.beat")],
)  # fmt: skip
def test_a_jsonpath_field_in_a_jsonata_task_is_reported(field, value) -> None:
    definition = _machine(("Train candidate model", _task(**{field: value})))
    (problem,) = check_definition(definition)
    assert problem.startswith(f"State 'Train candidate model', {field}: {field} is JSONPath only")


def test_parameters_in_a_jsonata_state_is_reported_and_says_to_use_arguments() -> None:
    definition = _machine(("Train candidate model", {"Type": "Task", "Resource": LAMBDA, "Parameters": {"a": 1}}))
    assert check_definition(definition) == [
        "State 'Train candidate model', Parameters: Parameters is JSONPath only; JSONata uses Arguments"
    ]


def test_result_path_in_a_jsonata_state_or_its_catch_is_reported() -> None:
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Run failed"}]
    definition = _machine(
        ("Train candidate model", _task(ResultPath="$.training", Catch=catch)),
        ("Run failed", {"Type": "Fail", "Error": "TrainingFailed"}),
    )
    assert _problems_mentioning(definition, "ResultPath is JSONPath only") == [
        "State 'Train candidate model', ResultPath: ResultPath is JSONPath only; "
        "JSONata uses Output (and Assign) with $states.result",
        "State 'Train candidate model', Catch[0].ResultPath: ResultPath is JSONPath only; "
        "in JSONata a Catch uses Output and Assign",
    ]


@pytest.mark.parametrize(
    ("state_type", "fields", "field"),
    [("Wait", {"SecondsPath": "$.wait"}, "SecondsPath"), ("Wait", {"TimestampPath": "$.at"}, "TimestampPath"),
     ("Fail", {"ErrorPath": "$.error"}, "ErrorPath"), ("Fail", {"CausePath": "$.cause"}, "CausePath"),
     ("Pass", {"Result": {"a": 1}}, "Result"), ("Map", {"ItemsPath": "$.rows", "ItemProcessor": {
         "StartAt": "Row", "States": {"Row": {"Type": "Succeed"}}}}, "ItemsPath")],
)  # fmt: skip
def test_path_fields_and_result_are_jsonpath_only(state_type, fields, field) -> None:
    definition = _machine(("Some step", {"Type": state_type, **fields}))
    (problem,) = check_definition(definition)
    assert problem.startswith(f"State 'Some step', {field}: {field} is JSONPath only")


def test_a_jsonata_choice_rule_with_a_variable_and_comparison_is_reported() -> None:
    definition = _machine(
        ("Is it good enough?", {"Type": "Choice", "Default": "Done",
                                "Choices": [{"Variable": "$.accuracy", "NumericGreaterThan": 0.9, "Next": "Done"}]}),
        ("Done", {"Type": "Succeed"}),
    )  # fmt: skip
    assert check_definition(definition) == [
        "State 'Is it good enough?', Choices[0].Variable: Variable is JSONPath only; "
        "a JSONata Choice rule uses Condition",
        "State 'Is it good enough?', Choices[0].NumericGreaterThan: NumericGreaterThan is JSONPath only; "
        "a JSONata Choice rule uses Condition",
        "State 'Is it good enough?', Choices[0]: a JSONata Choice rule needs a Condition",
    ]


def test_condition_in_a_jsonpath_choice_is_reported() -> None:
    definition = _machine(
        ("Is it good enough?", {"Type": "Choice", "Default": "Done",
                                "Choices": [{"Condition": "{% $states.input.accuracy > 0.9 %}", "Next": "Done"}]}),
        ("Done", {"Type": "Succeed"}),
        language="JSONPath",
    )  # fmt: skip
    assert check_definition(definition) == [
        "State 'Is it good enough?', Choices[0].Condition: Condition is JSONata only; set QueryLanguage to JSONata"
    ]


def test_arguments_and_output_in_a_jsonpath_state_are_reported() -> None:
    definition = _machine(
        ("Train candidate model", _task(Output={"a": 1})), ("Done", {"Type": "Succeed"}), language="JSONPath"
    )
    assert check_definition(definition) == [
        "State 'Train candidate model', Arguments: Arguments is JSONata only; "
        "set QueryLanguage to JSONata or use JSONPath fields",
        "State 'Train candidate model', Output: Output is JSONata only; "
        "set QueryLanguage to JSONata or use JSONPath fields",
    ]


def test_jsonata_in_a_jsonpath_state_is_reported_as_passed_on_as_text() -> None:
    definition = _machine(
        ("Train candidate model", {"Type": "Task", "Resource": LAMBDA, "Parameters": {"Name": "{% $uuid() %}"}}),
        language="JSONPath",
    )
    assert check_definition(definition) == [
        "State 'Train candidate model', Parameters.Name: JSONata in a JSONPath state is passed on as text; "
        "set QueryLanguage"
    ]


def test_a_state_level_query_language_overrides_the_top_level_one() -> None:
    jsonata_state = _task(QueryLanguage="JSONata", Arguments={"Payload": "{% $states.input %}"})
    definition = _machine(("Train candidate model", jsonata_state), language="JSONPath")
    assert check_definition(definition) == []
    jsonpath_state = {"Type": "Task", "Resource": LAMBDA, "QueryLanguage": "JSONPath", "Parameters": {"a.$": "$.a"}}
    assert check_definition(_machine(("Train candidate model", jsonpath_state))) == []


@pytest.mark.parametrize(
    ("state", "field"),
    [({"Type": "Pass", "Arguments": {}}, "Arguments"), ({"Type": "Map", "Arguments": {}, "ItemProcessor": {
        "StartAt": "Row", "States": {"Row": {"Type": "Succeed"}}}}, "Arguments"),
     ({"Type": "Fail", "Output": {}}, "Output"), ({"Type": "Succeed", "Assign": {"a": 1}}, "Assign")],
)  # fmt: skip
def test_a_field_the_state_type_does_not_have_is_reported(state, field) -> None:
    assert check_definition(_machine(("Some step", state))) == [
        f"State 'Some step', {field}: a {state['Type']} state has no {field} field"
    ]


def test_a_jsonpath_key_in_a_jsonata_state_is_reported() -> None:
    definition = _machine(("Train candidate model", _task(Arguments={"Payload": {"rows.$": "$.rows"}})))
    assert check_definition(definition) == [
        "State 'Train candidate model', Arguments.Payload.rows.$: a key ending in .$ is JSONPath; JSONata uses {% %}"
    ]


# ---------------------------------------------------------------- $states
def test_states_result_outside_output_and_assign_of_a_task_is_reported() -> None:
    definition = _machine(
        ("Train candidate model", _task(Arguments={"Payload": "{% $states.result %}"})),
        ("Report", {"Type": "Pass", "Output": "{% $states.result %}"}),
    )
    assert _problems_mentioning(definition, "$states.result") == [
        "State 'Train candidate model', Arguments.Payload: "
        "$states.result exists only in the Output and Assign of a Task, Parallel or Map",
        "State 'Report', Output: $states.result exists only in the Output and Assign of a Task, Parallel or Map",
    ]


def test_states_error_output_outside_a_catch_is_reported() -> None:
    definition = _machine(("Train candidate model", _task(Output="{% $states.errorOutput %}")))
    assert check_definition(definition) == [
        "State 'Train candidate model', Output: $states.errorOutput exists only in a Catch's Output and Assign"
    ]


def test_an_unknown_field_of_states_is_reported() -> None:
    definition = _machine(("Start run", {"Type": "Pass", "Output": "{% $states.inptu %}"}))
    assert check_definition(definition) == [
        "State 'Start run', Output: $states has no 'inptu' (input, result, errorOutput, context)"
    ]


# ---------------------------------------------------------------- variables
def test_an_unknown_variable_is_reported() -> None:
    definition = _machine(("Train candidate model", _task(Arguments={"TrainingJobName": "{% 'job-' & $runId %}"})))
    assert check_definition(definition) == [
        "State 'Train candidate model', Arguments.TrainingJobName: unknown variable $runId: no state assigns it"
    ]


def test_a_variable_read_before_it_is_assigned_is_reported() -> None:
    definition = _machine(
        ("Train candidate model", _task(Arguments={"TrainingJobName": "{% $runId %}"})),
        ("Start run", {"Type": "Pass", "Assign": {"runId": "{% $uuid() %}"}}),
    )
    assert check_definition(definition) == [
        "State 'Train candidate model', Arguments.TrainingJobName: variable $runId is not assigned on any path "
        "before this state (assigned by 'Start run')"
    ]


def test_a_state_reading_its_own_assign_is_reported() -> None:
    definition = _machine(
        ("Start run", {"Type": "Pass", "Assign": {"runId": "{% $uuid() %}", "jobName": "{% 'job-' & $runId %}"},
                       "Output": "{% $runId %}"}),
    )  # fmt: skip
    message = "$runId is not assigned before this state; its own Assign takes effect only when it is left"
    assert check_definition(definition) == [
        f"State 'Start run', Assign.jobName: {message}",
        f"State 'Start run', Output: {message}",
    ]


def test_a_variable_assigned_only_inside_a_parallel_branch_is_not_seen_after_it() -> None:
    branch = {"StartAt": "Train", "States": {"Train": {"Type": "Pass", "Assign": {"modelUri": "s3://m"}, "End": True}}}
    definition = _machine(
        ("Train both", {"Type": "Parallel", "Branches": [branch]}),
        ("Register", {"Type": "Pass", "Output": "{% $modelUri %}"}),
    )
    assert check_definition(definition) == [
        "State 'Register', Output: variable $modelUri is not assigned on any path before this state "
        "(assigned by 'Train' inside 'Train both', whose variables end with it)"
    ]


def test_outer_variables_are_seen_inside_a_branch_but_not_inside_a_distributed_map() -> None:
    inner = {"Type": "Pass", "Output": "{% $runId %}", "End": True}
    definition = _machine(
        ("Start run", {"Type": "Pass", "Assign": {"runId": "r-1"}}),
        ("Train both", {"Type": "Parallel", "Branches": [{"StartAt": "In branch", "States": {"In branch": inner}}]}),
        ("Score rows", {"Type": "Map", "Items": [1, 2], "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "In distributed map", "States": {"In distributed map": inner}}}),
    )  # fmt: skip
    assert check_definition(definition) == [
        "State 'In distributed map', Output: variable $runId is not assigned on any path before this state "
        "(assigned by 'Start run')"
    ]


def test_an_inner_scope_reusing_an_outer_variable_name_is_reported() -> None:
    branch = {"StartAt": "Train", "States": {"Train": {"Type": "Pass", "Assign": {"runId": "inner"}, "End": True}}}
    definition = _machine(
        ("Start run", {"Type": "Pass", "Assign": {"runId": "outer"}}),
        ("Train both", {"Type": "Parallel", "Branches": [branch]}),
    )
    assert check_definition(definition) == [
        "State 'Train', Assign.runId: $runId is also assigned outside 'Train both'; "
        "an inner scope may not reuse an outer variable's name"
    ]


def test_a_catch_assigns_only_along_its_own_transition() -> None:
    catch = [{"ErrorEquals": ["States.ALL"], "Assign": {"failure": "{% $states.errorOutput %}"}, "Next": "Failed"}]
    definition = _machine(
        ("Train candidate model", _task(Assign={"modelUri": "s3://m"}, Catch=catch)),
        ("Register", {"Type": "Pass", "Output": "{% $failure %}", "Next": "Done"}),
        ("Failed", {"Type": "Fail", "Error": "TrainingFailed", "Cause": "{% $modelUri %}"}),
        ("Done", {"Type": "Succeed"}),
    )
    assert check_definition(definition) == [
        "State 'Register', Output: variable $failure is not assigned on any path before this state "
        "(assigned by 'Train candidate model')",
        "State 'Failed', Cause: variable $modelUri is not assigned on any path before this state "
        "(assigned by 'Train candidate model')",
    ]


def test_names_an_expression_binds_itself_are_not_workflow_variables() -> None:
    expression = "{% ($rows := $states.input.rows; $map($rows, function($row, $i) { $row.x * $i })) %}"
    tuples = "{% $states.input.rows@$row#$i[$i > 0].{'x': $row.x, 'at': $i} %}"
    definition = _machine(("Start run", {"Type": "Pass", "Output": {"a": expression, "b": tuples, "c": "{% $ %}"}}))
    assert check_definition(definition) == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [("states", "$states is reserved and cannot be assigned"),
     ("_hidden", "'_hidden' is not a variable name (a letter, then letters, digits or _)"),
     ("9lives", "'9lives' is not a variable name (a letter, then letters, digits or _)"),
     ("model.uri", "'model.uri' is not a variable name (a letter, then letters, digits or _)"),
     ("x" * 81, "a variable name is at most 80 characters")],
)  # fmt: skip
def test_a_variable_name_against_the_aws_rules_is_reported(name, problem) -> None:
    definition = _machine(("Start run", {"Type": "Pass", "Assign": {name: 1}}))
    assert check_definition(definition) == [f"State 'Start run', Assign.{name}: {problem}"]


def test_variables_read_by_jsonpath_states_are_checked_too() -> None:
    definition = _machine(
        ("Start run", {"Type": "Pass", "Assign": {"runId.$": "$.id"}}),
        ("Train candidate model", {"Type": "Task", "Resource": LAMBDA, "ResultPath": "$runId", "Parameters": {
            "Name.$": "States.Format('job-{}-$notAVariable', $runId)", "Model.$": "$modelUri"}}),
        language="JSONPath",
    )  # fmt: skip
    assert check_definition(definition) == [
        "State 'Train candidate model', ResultPath: ResultPath cannot read a variable ($runId)",
        "State 'Train candidate model', Parameters.Model.$: unknown variable $modelUri: no state assigns it",
    ]


# ---------------------------------------------------------------- the project's definition
def test_the_definition_passes_the_checks_of_the_query_language_it_declares() -> None:
    assert check_definition(load_definition()) == []


def test_declaring_jsonata_at_the_top_turns_the_checks_on_for_every_state() -> None:
    """Proves the test above applies the JSONata rules by itself once the file declares JSONata."""
    definition = json.loads(json.dumps(load_definition()))
    language = definition.get("QueryLanguage", "JSONPath")
    definition["QueryLanguage"] = "JSONPath" if language == "JSONata" else "JSONata"
    flipped = check_definition(definition)
    assert flipped, "the same states pass in both query languages: the checker cannot tell them apart"
    assert any("JSONPath only" in p for p in flipped) or any("JSONata only" in p for p in flipped)
