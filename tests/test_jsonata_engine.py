"""JSONata states run in moto's ASL engine through local_runtime.jsonata_engine, with AWS's functions and errors.

Every test creates a state machine with boto3 under moto (the ``aws`` fixture installs the engine),
starts an execution and reads what Step Functions reports.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
import uuid
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto.stepfunctions.parser.asl.component.intrinsic import jsonata as moto_functions
from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison import ConditionStringJSONata
from moto.stepfunctions.parser.asl.eval import variable_store
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata

from local_runtime import jsonata_engine

ROLE = "arn:aws:iam::123456789012:role/jsonata-tests"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"


def execute(
    states: dict[str, Any], start_at: str, given: Any = None, language: str = "JSONata"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(describe_execution, history events) of one execution of a state machine that has ``states``, in ``language``."""
    sfn = boto3.client("stepfunctions")
    definition = {"QueryLanguage": language, "StartAt": start_at, "States": states}
    machine = sfn.create_state_machine(
        name=f"jsonata-{uuid.uuid4().hex[:12]}", definition=json.dumps(definition), roleArn=ROLE
    )
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input=json.dumps(given or {}))["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.02)
    return described, sfn.get_execution_history(executionArn=arn)["events"]


def output_of(expressions: dict[str, Any], given: Any = None) -> Any:
    """The output of a one-state machine whose Output is ``expressions``."""
    described, _ = execute({"Only": {"Type": "Pass", "Output": expressions, "End": True}}, "Only", given)
    assert described["status"] == "SUCCEEDED", described
    return json.loads(described["output"])


def failure_of(expression: str, given: Any = None) -> dict[str, Any]:
    described, _ = execute({"Only": {"Type": "Pass", "Output": expression, "End": True}}, "Only", given)
    assert described["status"] == "FAILED", described
    return described


def moto_attributes() -> dict[str, Any]:
    """Every attribute of moto's Step Functions modules and of the classes they define, by dotted name."""
    attributes: dict[str, Any] = {}
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("moto.stepfunctions") or not isinstance(module, ModuleType):
            continue
        for name, value in vars(module).items():
            attributes[f"{module_name}.{name}"] = value
            if isinstance(value, type) and value.__module__ == module_name:
                for attribute, member in vars(value).items():
                    attributes[f"{module_name}.{name}.{attribute}"] = member
    return attributes


def test_moto_still_calls_our_hook() -> None:
    """The engine fills a hook that moto leaves empty on purpose; a moto upgrade must be a deliberate act."""
    pinned = re.search(
        r"^moto\[?.*?\]?==([\w.]+)", (Path(__file__).parent.parent / "requirements-dev.txt").read_text(), re.M
    )
    assert pinned is not None and metadata.version("moto") == pinned.group(1) == "5.2.5"
    # The engine ports around jsonata-python 0.7.1's departures from JSONata 2.0.6.
    assert metadata.version("jsonata-python") == "0.7.1"
    assert hasattr(moto_jsonata, "_eval_jsonata"), "moto renamed its JSONata hook"
    # install() sets one moto attribute, the hook, and leaves the rest of moto as moto ships it.
    moto_jsonata._eval_jsonata = None  # moto's own value, so that install() has the hook to fill again
    before = moto_attributes()
    jsonata_engine.install()
    jsonata_engine.install()  # idempotent
    assert jsonata_engine.installed()
    after = moto_attributes()
    assert {name for name in before.keys() | after.keys() if before.get(name) is not after.get(name)} == {
        "moto.stepfunctions.parser.asl.jsonata.jsonata._eval_jsonata"
    }
    assert moto_jsonata._eval_jsonata is jsonata_engine._moto_hook
    # Notably not the two the engine once replaced: the Condition check and the variables' encoding.
    condition_check = ConditionStringJSONata._eval_body
    assert (condition_check.__module__, condition_check.__qualname__) == (
        ConditionStringJSONata.__module__,
        "ConditionStringJSONata._eval_body",
    )
    assert variable_store.encode_jsonata_variable_declarations is moto_jsonata.encode_jsonata_variable_declarations
    assert moto_jsonata.encode_jsonata_variable_declarations.__module__ == moto_jsonata.__name__
    # moto's own entry point hands one expression string to the hook and returns what it gives back.
    assert moto_jsonata.eval_jsonata_expression("($x:=[1,2];$sum($x))") == 3
    # The stand-ins moto declares for AWS's functions, which the engine takes out of each expression.
    assert set(moto_functions._DECLARATION_BY_VARIABLE_REFERENCE) == {
        "$partition", "$range", "$hash", "$randomSeeded", "$uuid", "$parse"
    }  # fmt: skip


def test_importing_the_engine_changes_nothing() -> None:
    """The engine's changes to moto and jsonata-python are install()'s; evaluate() makes its own."""
    script = """
import jsonata.signature
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
original = jsonata.signature.Signature.get_symbol
from local_runtime import jsonata_engine
assert jsonata.signature.Signature.get_symbol is original, "importing patched jsonata-python"
assert moto_jsonata._eval_jsonata is None, "importing filled moto's hook"
assert not jsonata_engine.installed()
code = None
try:
    jsonata_engine.evaluate("$split('a,b', ',', null)")
except jsonata_engine.JSONataError as error:
    code = error.code
assert code == "T0410", code
assert moto_jsonata._eval_jsonata is None, "evaluate() filled moto's hook"
"""
    root = Path(__file__).parent.parent
    run = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_assigned_variables_reach_later_states(aws) -> None:
    described, _ = execute(
        {
            "Remember": {
                "Type": "Pass",
                "Assign": {
                    "doubled": "{% $states.input.n * 2 %}",
                    # A quote and a backslash in a string variable: moto alone writes them into later
                    # expressions unescaped, which breaks every expression after this state.
                    "label": "{% 'run \"' & $states.input.name & '\" in C:\\\\models' %}",
                    "model": {"name": "{% $states.input.name %}", "tags": ["{% $uppercase($states.input.name) %}"]},
                },
                "Next": "Use",
            },
            "Use": {
                "Type": "Pass",
                "Output": {"doubled": "{% $doubled %}", "label": "{% $label %}", "tag": "{% $model.tags[0] %}"},
                "End": True,
            },
        },
        "Remember",
        {"n": 21, "name": "xgb"},
    )
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"doubled": 42, "label": 'run "xgb" in C:\\models', "tag": "XGB"}


@pytest.mark.parametrize(("score", "branch", "said"), [(0.91, "Promote", "promoted"), (0.42, "Reject", "rejected")])
def test_condition_reads_states_input(aws, score: float, branch: str, said: str) -> None:
    described, history = execute(
        {
            "Gate": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $states.input.metrics.auc >= 0.8 %}", "Next": "Promote"}],
                "Default": "Reject",
            },
            "Promote": {
                "Type": "Pass",
                "Output": {"said": "{% 'promoted ' & $states.context.State.Name %}"},
                "End": True,
            },
            "Reject": {
                "Type": "Pass",
                "Output": {"said": "{% 'rejected ' & $states.context.State.Name %}"},
                "End": True,
            },
        },
        "Gate",
        {"metrics": {"auc": score}},
    )
    assert json.loads(described["output"]) == {"said": f"{said} {branch}"}
    assert [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e] == [
        "Gate",
        branch,
    ]


@pytest.mark.parametrize(
    ("condition", "was"),
    [
        ("$states.input.auc", "0.9"),
        ("$states.input.label", '"passed \\"ok\\""'),  # a string: moto would also ask $type() of it
        ("$states.input.notes", "null"),  # null is a value, not undefined
        ("$states.input.metrics", '{"auc": 0.9}'),
    ],
)
def test_condition_that_is_not_boolean_is_a_query_evaluation_error(aws, condition: str, was: str) -> None:
    """The execution fails with AWS's error name, the one a Catch would match. (A Choice has no Catch, and
    moto 5.2.5 cannot pass a States.* error out of a Parallel branch or a Map iteration to theirs: it
    rewraps the name as a custom error name, which refuses the prefix with a ValueError.)"""
    described, history = execute(
        {
            "Gate": {
                "Type": "Choice",
                "Choices": [{"Condition": f"{{% {condition} %}}", "Next": "Passed"}],
                "Default": "Passed",
            },
            "Passed": {"Type": "Succeed"},
        },
        "Gate",
        {"auc": 0.9, "label": 'passed "ok"', "notes": None, "metrics": {"auc": 0.9}},
    )
    assert (described["status"], described["error"]) == ("FAILED", QUERY_EVALUATION_ERROR), described
    assert described["cause"].endswith(
        f"The JSONata expression '{condition}' specified for the field 'Condition' returned an unexpected "
        f"result type. Expected 'boolean', but was {was}."
    )
    assert "EvaluationFailed" in {event["type"] for event in history}


def test_condition_that_is_undefined_fails_as_moto_reports_it(aws) -> None:
    """moto asks $exists(...) of a Condition that gives nothing; the engine answers and leaves the error to moto."""
    described, _ = execute(
        {
            "Gate": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $states.input.missing %}", "Next": "End"}],
                "Default": "End",
            },
            "End": {"Type": "Succeed"},
        },
        "Gate",
        {"auc": 0.9},
    )
    assert (described["status"], described["error"]) == ("FAILED", QUERY_EVALUATION_ERROR)
    assert "returned nothing (undefined)" in described["cause"]


def test_string_variables_keep_quotes_and_backslashes(aws) -> None:
    """moto writes a string variable into later expressions as "<text>"; the engine writes it as JSON."""
    text = 'say "hi" to C:\\models\\new\tline — ünïcode 😀'
    described, _ = execute(
        {
            "Remember": {
                "Type": "Pass",
                "Assign": {"text": "{% $states.input.text %}", "count": 3, "plain": "no quotes"},
                "Next": "Fan out",
            },
            "Fan out": {
                "Type": "Map",
                "Items": "{% [1, 2] %}",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Inner",
                    "States": {
                        # the Map's iterations read the outer scope's variables
                        "Inner": {"Type": "Pass", "Output": "{% $text & ' #' & $states.input %}", "End": True}
                    },
                },
                "Assign": {"inner": "{% $states.result %}"},
                "Next": "Use",
            },
            "Use": {
                "Type": "Pass",
                "Output": {
                    "text": "{% $text %}",
                    "hash": "{% $hash($text, 'SHA-256') %}",
                    "inner": "{% $inner %}",
                    "plain": "{% $plain & '/' & $count %}",
                },
                "End": True,
            },
        },
        "Remember",
        {"text": text},
    )
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {
        "text": text,
        "hash": hashlib.sha256(text.encode()).hexdigest(),
        "inner": [f"{text} #1", f"{text} #2"],
        "plain": "no quotes/3",
    }


def test_jsonpath_states_sample_string_variables_intact(aws) -> None:
    """A JSONPath state that reads a variable ("x.$": "$name") goes through the same hook and declarations."""
    text = 'say "hi" to C:\\models'
    described, _ = execute(
        {
            "Remember": {"Type": "Pass", "Assign": {"text.$": "$.text"}, "Next": "Sample"},
            "Sample": {"Type": "Pass", "Parameters": {"text.$": "$text"}, "End": True},
        },
        "Remember",
        {"text": text},
        language="JSONPath",
    )
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"text": text}


def test_states_input_that_is_a_quoted_string_is_read_intact(aws) -> None:
    text = 'a "quoted" input\\'
    assert output_of({"echo": "{% $states.input %}", "upper": "{% $uppercase($states.input) %}"}, text) == {
        "echo": text,
        "upper": text.upper(),
    }


def test_error_cause_assigned_in_a_catch_reaches_later_states(aws) -> None:
    """An error Cause quotes the expression that failed, double quotes included."""
    described, _ = execute(
        {
            "Convert": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:listBuckets",
                "Arguments": {"MaxBuckets": '{% $number("ten \\"units\\"") %}'},
                "Catch": [
                    {
                        "ErrorEquals": [QUERY_EVALUATION_ERROR],
                        "Assign": {"cause": "{% $states.errorOutput.Cause %}"},
                        "Output": "{% $states.errorOutput %}",
                        "Next": "Report",
                    }
                ],
                "End": True,
            },
            "Report": {
                "Type": "Pass",
                "Output": {"assigned": "{% $cause %}", "caught": "{% $states.input.Cause %}"},
                "End": True,
            },
        },
        "Convert",
    )
    assert described["status"] == "SUCCEEDED", described
    report = json.loads(described["output"])
    assert '"' in report["caught"] and "\\" in report["caught"]
    assert report["assigned"] == report["caught"]
    assert report["caught"].startswith("""The JSONata expression '$number("ten \\"units\\"")' threw an error""")


def test_hash_matches_hashlib(aws) -> None:
    text = 'model "v2" — ünïcode ✓ 😀'  # 😀: beyond the BMP, written into the block as a \\u pair
    algorithms = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
    hashes = output_of({name: f"{{% $hash($states.input.text, '{name}') %}}" for name in algorithms}, {"text": text})
    assert hashes == {name: hashlib.new(algorithm, text.encode()).hexdigest() for name, algorithm in algorithms.items()}


def test_evaluation_error_is_caught_by_its_aws_name(aws) -> None:
    described, history = execute(
        {
            "List buckets": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:listBuckets",
                "Arguments": {"MaxBuckets": "{% $states.input.limit + 1 %}"},
                "Catch": [
                    {"ErrorEquals": ["States.TaskFailed"], "Output": "wrong catcher", "Next": "Handled"},
                    {"ErrorEquals": [QUERY_EVALUATION_ERROR], "Output": "{% $states.errorOutput %}", "Next": "Handled"},
                ],
                "End": True,
            },
            "Handled": {"Type": "Succeed"},
        },
        "List buckets",
        {"limit": "ten"},
    )
    assert described["status"] == "SUCCEEDED", described
    caught = json.loads(described["output"])
    assert caught["Error"] == QUERY_EVALUATION_ERROR
    assert caught["Cause"].startswith(
        "The JSONata expression '$states.input.limit + 1' threw an error during evaluation."
    )
    assert "T2001" in caught["Cause"]
    assert "EvaluationFailed" in {event["type"] for event in history}


def test_uncaught_evaluation_error_fails_the_execution_with_its_aws_name(aws) -> None:
    described = failure_of("{% $states.input.limit + 1 %}", {"limit": "ten"})
    assert described["error"] == QUERY_EVALUATION_ERROR
    assert described["cause"].startswith(
        "An error occurred while executing the state 'Only' (entered at the event id #2)."
    )


def test_a_field_that_evaluates_to_undefined_fails_and_null_does_not(aws) -> None:
    """AWS: JSON cannot represent undefined, so such a field fails the state; null is a value."""
    assert output_of({"reason": "{% $states.input.reason %}"}, {"reason": None}) == {"reason": None}
    described = failure_of("{% $states.input.missing %}", {"reason": None})
    assert described["error"] == QUERY_EVALUATION_ERROR
    assert "returned nothing (undefined)" in described["cause"]


def test_partition_and_range_follow_aws(aws) -> None:
    assert output_of(
        {
            "chunks": "{% $partition($states.input.items, 4) %}",
            "rounded_down": "{% $partition($states.input.items, 2.9) %}",
            "one_chunk": "{% $partition([1, 2], 10) %}",
            "evens": "{% $range(0, 10, 2) %}",
            "down": "{% $range(10, 0, -3) %}",
            "floored": "{% $range(1.9, 4.2, 1) %}",
            "none": "{% $range(5, 1, 1) %}",
        },
        {"items": [1, 2, 3, 4, 5, 6, 7, 8, 9]},
    ) == {
        "chunks": [[1, 2, 3, 4], [5, 6, 7, 8], [9]],
        "rounded_down": [[1, 2], [3, 4], [5, 6], [7, 8], [9]],
        "one_chunk": [[1, 2]],
        "evens": [0, 2, 4, 6, 8, 10],
        "down": [10, 7, 4, 1],
        "floored": [1, 2, 3, 4],
        "none": [],
    }


@pytest.mark.parametrize(
    "expression",
    [
        "$partition([1, 2], 0)",  # the chunk size must be a positive integer
        "$range(0, 1000, 1)",  # 1001 items: States.ArrayRange's limit is 1000
        "$range(0, 5, 0)",
        "$hash('model', 'SHA-3')",  # not one of AWS's five algorithms
        "$hash({'a': 1}, 'MD5')",  # the data must be a string
        "$parse('{not json')",
        "$eval('1 + 1')",  # AWS leaves $eval out of JSONata
        "$sum",  # a function is no JSON value
        "1 +",
    ],
)
def test_what_aws_refuses_is_a_query_evaluation_error(aws, expression: str) -> None:
    assert failure_of(f"{{% {expression} %}}")["error"] == QUERY_EVALUATION_ERROR


def test_uuid_is_random_v4(aws) -> None:
    first = output_of({"a": "{% $uuid() %}", "b": "{% $uuid() %}"})
    second = output_of({"a": "{% $uuid() %}"})
    ids = [uuid.UUID(value) for value in (*first.values(), *second.values())]
    assert all(value.version == 4 for value in ids)
    assert len(set(ids)) == 3


def test_random_takes_a_seed(aws) -> None:
    numbers = output_of({"seeded": "{% [$random(42), $random(42), $random(42.7)] %}", "free": "{% $random() %}"})
    assert numbers["seeded"][0] == numbers["seeded"][1] == numbers["seeded"][2]  # 42.7 rounds down to 42
    assert all(0 <= n < 1 for n in (*numbers["seeded"], numbers["free"]))
    assert output_of({"seeded": "{% $random(43) %}"})["seeded"] != numbers["seeded"][0]


def test_parse_reads_json_strings(aws) -> None:
    payload = {"metrics": {"auc": 0.93}, "notes": None, "tags": ["a", 'quote " inside']}
    assert output_of(
        {
            "parsed": "{% $parse($states.input.body) %}",
            "auc": "{% $parse($states.input.body).metrics.auc %}",
            "null": "{% $parse('null') %}",
        },
        {"body": json.dumps(payload)},
    ) == {"parsed": payload, "auc": 0.93, "null": None}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # JSONata's sort keeps items the comparator does not order where they were
        (
            "$sort([[2, 'a'], [1, 'b'], [2, 'c'], [1, 'd']], function($x, $y) { $x[0] > $y[0] }).$[1]",
            ["b", "d", "a", "c"],
        ),
        ("$number('0x1F') + $number('1e3')", 1031),
        ("$replace('68F and 5F', /(\\d+)F/, function($m) { $m.groups[0] & 'C' })", "68C and 5C"),
        ("$toMillis('2018-02-03T11:15:33Z')", 1517656533000),
        # a \\u escape pair is one character beyond the BMP, as in JavaScript; an escaped backslash is not an escape
        ('"\\ud83d\\ude00" & "\\\\ud83d\\\\ude00"', "😀\\ud83d\\ude00"),
        ("$hash('\\uD83D\\uDE00', 'MD5')", hashlib.md5("😀".encode()).hexdigest()),  # noqa: S324
    ],
)
def test_built_ins_give_what_jsonata_gives(expression: str, expected: Any) -> None:
    assert jsonata_engine.evaluate(expression) == expected


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("$number('ten')", "D3030"),
        ("$split('a,b', ',', null)", "T0410"),  # null is no number
        ("$toMillis('2018-02-03 11:15:33')", "D3110"),  # no ISO 8601 timestamp: AWS refuses it too
        ("$power(-2, 0.5)", "D3061"),
        ("$decodeUrl('%E0%A4%A')", "D3140"),
        ("$fromMillis(0, '[YN]')", "D3133"),
    ],
)
def test_built_ins_fail_with_jsonata_codes(expression: str, code: str) -> None:
    with pytest.raises(jsonata_engine.JSONataError) as failure:
        jsonata_engine.evaluate(expression)
    assert failure.value.code == code
