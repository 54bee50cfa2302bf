"""Static checks of an Amazon States Language definition that no linter here makes: JSONata and variables.

The ASL language service of the editor (tests/asl_language_service.cjs) and cfn-lint's E3601 accept a
definition whose JSONata does not parse, whose JSONata states still carry JSONPath fields, or whose
expressions read variables no state assigns. ``check_definition`` reports those, one readable line
per problem ("State 'Train candidate model', Arguments.TrainingJobName: unknown variable $runId"), and
returns [] for a sound definition. The rules, with the AWS Step Functions documentation behind each:

Query language (transforming-data.html, "QueryLanguage field"): a state's own ``QueryLanguage``, else the
top-level one, else JSONPath. Only "JSONPath" and "JSONata" exist.

Expressions (transforming-data.html, "Writing JSONata expressions in JSON strings"): in a JSONata state a
string is JSONata when it starts with ``{%`` and ends with ``%}``, with no space outside them, at any depth
of any field (Arguments, Output, Assign, Condition, Items, ItemSelector, Error, Cause, TimeoutSeconds,
Seconds, MaxConcurrency, ...). Every one is parsed with jsonata-python (Step Functions runs JSONata
2.0.6); a string that opens or closes only half-way is reported, as AWS rejects it. ``Type``, ``Resource``,
``Next`` and ``Default`` must be constants. SAM replaces ``${Name}`` (DefinitionSubstitutions) before Step
Functions sees the definition, so each is parsed as the number 0: the expression around it is checked,
not the value put in. In a JSONPath state a ``{% %}`` string is not evaluated, and is reported.

Fields per query language (transforming-data.html "Arguments and Output Fields", "Choice state",
"No more path fields"; state-pass/state-parallel/state-map/state-choice.html):
* JSONPath only: InputPath, OutputPath, Parameters, ResultSelector, ResultPath, Pass's Result, Map's
  ItemsPath, and every other ``*Path`` field (SecondsPath, TimestampPath, TimeoutSecondsPath,
  HeartbeatSecondsPath, ErrorPath, CausePath, MaxConcurrencyPath, ToleratedFailure*Path, and those in
  ItemReader/ItemBatcher); a Choice rule's Variable, comparison operators, And/Or/Not; a Catch's
  ResultPath; keys ending in ``.$``.
* JSONata only: Arguments (Task and Parallel), Output (every state but Fail), Map's Items, a Choice rule's
  Condition (which a JSONata rule needs) and Output, a Catch's Output; ItemReader/ResultWriter Arguments.
* Both: Assign (not in Succeed or Fail; also in Choice rules and Catchers), everything else.
Fields no state of that type has (Arguments in a Pass, Output in a Fail, Next in a Choice) are reported.

Variables (workflow-variables.html):
* A name is a Unicode identifier whose first character is ID_Start (so not ``_`` or a digit), at most 80
  characters, and not ``states``, which is reserved. Python's ``str.isidentifier`` (XID_Start, and ``_``
  excluded by hand) stands in for ID_Start/ID_Continue; they differ in a handful of compatibility characters.
* ``$states`` has ``input`` and ``context`` everywhere; ``result`` only in the Output and Assign of a Task,
  Parallel or Map; ``errorOutput`` only in a Catch's Output and Assign (transforming-data.html, "Reserved
  variable: $states"). ``$eval`` is not available; every other JSONata 2.0 function is, with
  ``$partition``, ``$range``, ``$hash``, ``$random``, ``$uuid`` and ``$parse`` added by Step Functions.
* An Assign takes effect when its state is left, along that state's own transitions: a state's Assign
  along Next/Default and every Choice rule, a Choice rule's Assign along its Next, a Catch's Assign along
  its Next (and not the state's own Assign: the state failed). All expressions of a state, its Assign and
  Catchers included, read the values from state entry ("Evaluation order in an assign field").
* A variable read in a state must be assigned on at least one path from the start of its scope to that
  state, or on entry to the scope. This is a may-analysis: it finds a read with no assignment before it on
  any path, not one that some path skips. A name no state assigns is always reported.
* Scopes ("Variable scope"): the top-level States are one scope; each Parallel branch and each Map
  iteration is a scope of its own that sees the outer variables as they were on entry to the Parallel/Map
  state, and whose own variables end with it. A distributed Map sees no outer variables. A name assigned
  in an inner scope must not also be assigned in an outer one.
* Inside an expression, ``$`` and ``$$``, names it binds itself (``$x := ...``, ``function($v)``, ``@$x``,
  ``#$i``) and built-in functions are not workflow variables. A name bound anywhere in an expression counts
  as bound in all of it: simpler than JSONata's block scoping, and it only ever misses problems.
* JSONPath states read variables too (``"x.$": "$name"``, ``States.Format('{}', $name)``, ``*Path`` fields,
  a Choice rule's Variable); those reads are checked the same way, and ResultPath may not read one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonata
from jsonata.parser import Parser

JSONPATH, JSONATA = "JSONPath", "JSONata"
QUERY_LANGUAGES = (JSONPATH, JSONATA)

# Path segments: a key of an object or an index of an array.
FieldPath = tuple[str | int, ...]

NEXT_OR_END = frozenset({"Next", "End"})
JSONPATH_IO = frozenset({"InputPath", "OutputPath"})
# Every field a state of each type can have in either query language (the state pages of the AWS
# developer guide; the same table as amazon-states-language-service's validationSchema).
FIELDS_BY_TYPE: dict[str, frozenset[str]] = {
    "Task": NEXT_OR_END | JSONPATH_IO | {
        "Resource", "Arguments", "Parameters", "Credentials", "ResultSelector", "ResultPath", "TimeoutSeconds",
        "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath", "Retry", "Catch", "Assign", "Output"},
    "Parallel": NEXT_OR_END | JSONPATH_IO | {
        "Branches", "Arguments", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch", "Assign", "Output"},
    "Map": NEXT_OR_END | JSONPATH_IO | {
        "ItemProcessor", "Iterator", "ItemsPath", "Items", "ItemSelector", "Parameters", "ItemReader", "ItemBatcher",
        "ResultWriter", "MaxConcurrency", "MaxConcurrencyPath", "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath", "ToleratedFailureCount", "ToleratedFailureCountPath", "Label",
        "ResultSelector", "ResultPath", "Retry", "Catch", "Assign", "Output"},
    "Pass": NEXT_OR_END | JSONPATH_IO | {"Result", "ResultPath", "Parameters", "Assign", "Output"},
    "Wait": NEXT_OR_END | JSONPATH_IO | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath", "Assign", "Output"},
    "Choice": JSONPATH_IO | {"Choices", "Default", "Assign", "Output"},
    "Succeed": JSONPATH_IO | {"Output"},
    "Fail": frozenset({"Error", "ErrorPath", "Cause", "CausePath"}),
}  # fmt: skip
EVERY_STATE_FIELDS = frozenset({"Type", "Comment", "QueryLanguage"})
JSONPATH_ONLY_FIELDS = frozenset({"InputPath", "OutputPath", "Parameters", "ResultSelector", "ResultPath", "Result"})
JSONATA_ONLY_FIELDS = frozenset({"Arguments", "Output", "Items"})
# Fields whose value must be a constant, never an expression (transforming-data.html).
CONSTANT_FIELDS = frozenset({"Type", "Resource", "Next", "Default", "End", "QueryLanguage"})
# Nested state machines: checked as scopes of their own, never walked as a state's fields.
NESTED_MACHINE_FIELDS = frozenset({"Branches", "ItemProcessor", "Iterator"})

CHOICE_COMPARISONS = frozenset(
    f"{kind}{op}{suffix}"
    for kind, ops in {
        "String": ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals"),
        "Numeric": ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals"),
        "Timestamp": ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals"),
        "Boolean": ("Equals",),
    }.items()
    for op in ops
    for suffix in ("", "Path")
) | {"StringMatches", "IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"}
JSONPATH_CHOICE_RULE_FIELDS = CHOICE_COMPARISONS | {"Variable", "And", "Or", "Not"}
JSONATA_CHOICE_RULE_FIELDS = frozenset({"Condition", "Output"})
CHOICE_RULE_FIELDS = JSONPATH_CHOICE_RULE_FIELDS | JSONATA_CHOICE_RULE_FIELDS | {"Next", "Comment", "Assign"}
CATCHER_FIELDS = frozenset({"ErrorEquals", "Next", "Comment", "Assign", "ResultPath", "Output"})

# jsonata-python's built-in functions are JSONata 2.0's; Step Functions removes $eval and adds six.
STEP_FUNCTIONS_FUNCTIONS = frozenset({"partition", "range", "hash", "random", "uuid", "parse"})
BUILT_IN_FUNCTIONS = (frozenset(jsonata.Jsonata.static_frame.bindings) - {"eval"}) | STEP_FUNCTIONS_FUNCTIONS
STATES_FIELDS = frozenset({"input", "result", "errorOutput", "context"})
MAX_VARIABLE_NAME = 80

SUBSTITUTION = re.compile(r"\$\{[A-Za-z0-9_]+\}")
# A variable in a JSONPath path or intrinsic function: $name, but not $, $$, $. or ${Substitution}.
JSONPATH_VARIABLE = re.compile(r"(?<![\w$])\$([^\W\d]\w*)")
QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")


@dataclass(frozen=True)
class Read:
    """A variable that a field of a state reads."""

    name: str
    state: str
    where: str  # the field, as format_path writes it


@dataclass
class Scope:
    """One States object: the machine's, a Parallel branch's or a Map iteration's."""

    states: dict[str, dict[str, Any]]
    start: str
    visible_on_entry: frozenset[str]
    enclosing: tuple[str, ...]  # names of the Parallel/Map states around it, outermost first
    outer_assigned: frozenset[str]  # names assigned in any enclosing scope


@dataclass
class Checker:
    top_language: str
    problems: list[str] = field(default_factory=list)
    # Every state that assigns each name, with the Parallel/Map states around it, for the messages.
    assigners: dict[str, list[tuple[str, tuple[str, ...]]]] = field(default_factory=dict)

    def report(self, state: str, where: str, message: str) -> None:
        self.problems.append(f"State {state!r}, {where}: {message}" if where else f"State {state!r}: {message}")


def check_definition(definition: dict[str, Any]) -> list[str]:
    """Every problem in the definition's JSONata, query-language fields and variables, one line each."""
    top_language = definition.get("QueryLanguage", JSONPATH)
    checker = Checker(top_language)
    if top_language not in QUERY_LANGUAGES:
        checker.problems.append(f"QueryLanguage {top_language!r} is neither JSONPath nor JSONata")
    _index_assigners(checker, definition["States"], ())
    root = Scope(definition["States"], definition["StartAt"], frozenset(), (), frozenset())
    _check_scope(checker, root)
    return checker.problems


# ---------------------------------------------------------------- walking the definition
def format_path(path: FieldPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _strings(value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, str]]:
    """Every string at any depth of a JSON value, with where it is."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _keys(value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, str]]:
    """Every object key at any depth of a JSON value, with the path of the object that has it."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, key
            yield from _keys(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _keys(item, (*path, index))


def _state_fields(state: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The fields whose strings a query language evaluates: all but nested machines and comments."""
    for key, value in state.items():
        if key not in NESTED_MACHINE_FIELDS and key != "Comment":
            yield key, value


def _nested_scopes(state: dict[str, Any]) -> Iterator[tuple[dict[str, Any], bool]]:
    """(machine, sees outer variables) for each Parallel branch and the Map iteration."""
    for branch in state.get("Branches", []):
        yield branch, True
    for key in ("ItemProcessor", "Iterator"):
        if key in state:
            distributed = state[key].get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
            yield state[key], not distributed


def _language(checker: Checker, state: dict[str, Any]) -> str:
    return state.get("QueryLanguage", checker.top_language)


def _variable_name(key: str, language: str) -> str:
    return key[:-2] if language == JSONPATH and key.endswith(".$") else key


def _assignments(state: dict[str, Any], language: str) -> Iterator[tuple[FieldPath, str]]:
    """(where, name) for every variable the state assigns: its own, its Choice rules' and its Catchers'."""
    for key in state.get("Assign", {}) if isinstance(state.get("Assign"), dict) else ():
        yield ("Assign", key), _variable_name(key, language)
    for group in ("Choices", "Catch"):
        for index, item in enumerate(state.get(group, [])):
            assign = item.get("Assign") if isinstance(item, dict) else None
            for key in assign if isinstance(assign, dict) else ():
                yield (group, index, "Assign", key), _variable_name(key, language)


def _index_assigners(checker: Checker, states: dict[str, Any], enclosing: tuple[str, ...]) -> None:
    for name, state in states.items():
        for _, variable in _assignments(state, _language(checker, state)):
            checker.assigners.setdefault(variable, []).append((name, enclosing))
        for machine, _ in _nested_scopes(state):
            _index_assigners(checker, machine.get("States", {}), (*enclosing, name))


# ---------------------------------------------------------------- one scope
def _check_scope(checker: Checker, scope: Scope) -> None:
    reads: list[Read] = []
    for name, state in scope.states.items():
        language = _language(checker, state)
        if language not in QUERY_LANGUAGES:
            checker.report(name, "QueryLanguage", f"{language!r} is neither JSONPath nor JSONata")
            continue
        _check_fields(checker, name, state, language)
        _check_assigned_names(checker, name, state, language, scope)
        if language == JSONATA:
            reads += _check_expressions(checker, name, state)
        else:
            reads += _jsonpath_reads(checker, name, state)
    visible = _visible_on_entry(checker, scope)
    for read in reads:
        _check_read(checker, read, visible.get(read.state, scope.visible_on_entry), scope.enclosing)
    assigned_here = frozenset(
        variable for state in scope.states.values() for _, variable in _assignments(state, _language(checker, state))
    )
    for name, state in scope.states.items():
        for machine, sees_outer in _nested_scopes(state):
            if "States" not in machine or "StartAt" not in machine:
                continue
            on_entry = visible.get(name, scope.visible_on_entry) if sees_outer else frozenset()
            inner = Scope(machine["States"], machine["StartAt"], on_entry, (*scope.enclosing, name),
                          scope.outer_assigned | assigned_here)  # fmt: skip
            _check_scope(checker, inner)


def _edges(state: dict[str, Any], language: str) -> Iterator[tuple[str, frozenset[str]]]:
    """(next state, variables assigned on the way) for every way out of a state."""
    own = frozenset(variable for path, variable in _assignments(state, language) if path[0] == "Assign")
    for key in ("Next", "Default"):
        if isinstance(state.get(key), str):
            yield state[key], own
    for group, also in (("Choices", own), ("Catch", frozenset())):
        for index, item in enumerate(state.get(group, [])):
            if isinstance(item, dict) and isinstance(item.get("Next"), str):
                on_edge = {v for path, v in _assignments(state, language) if path[:2] == (group, index)}
                yield item["Next"], also | on_edge


def _visible_on_entry(checker: Checker, scope: Scope) -> dict[str, frozenset[str]]:
    """For each state reached from the start: the variables assigned on at least one path to it."""
    visible = {scope.start: scope.visible_on_entry}
    pending = [scope.start]
    while pending:
        name = pending.pop()
        state = scope.states.get(name)
        if state is None:
            continue
        for target, assigned in _edges(state, _language(checker, state)):
            arriving = visible[name] | assigned
            if target not in visible or not arriving <= visible[target]:
                visible[target] = visible.get(target, frozenset()) | arriving
                pending.append(target)
    return visible


def _check_read(checker: Checker, read: Read, visible: frozenset[str], enclosing: tuple[str, ...]) -> None:
    if read.name in visible:
        return
    where = read.where
    assigners = checker.assigners.get(read.name)
    if not assigners:
        checker.report(read.state, where, f"unknown variable ${read.name}: no state assigns it")
        return
    if any(state == read.state for state, _ in assigners):
        checker.report(read.state, where, f"${read.name} is not assigned before this state; its own Assign "
                                          "takes effect only when it is left")  # fmt: skip
        return
    described = []
    for state, around in assigners:
        hidden = [outer for index, outer in enumerate(around) if around[: index + 1] != enclosing[: index + 1]]
        described.append(f"{state!r}" + (f" inside {hidden[0]!r}, whose variables end with it" if hidden else ""))
    checker.report(
        read.state, where, f"variable ${read.name} is not assigned on any path before this state "
        f"(assigned by {', '.join(described)})"
    )  # fmt: skip


# ---------------------------------------------------------------- fields per query language
def _check_fields(checker: Checker, name: str, state: dict[str, Any], language: str) -> None:
    kind = state.get("Type")
    allowed = FIELDS_BY_TYPE.get(kind)
    if allowed is None:
        checker.report(name, "Type", f"unknown state type {kind!r}")
        return
    for key in state:
        if key not in allowed | EVERY_STATE_FIELDS:
            checker.report(name, key, f"a {kind} state has no {key} field")
        elif language == JSONATA and (key in JSONPATH_ONLY_FIELDS or key.endswith("Path")):
            checker.report(name, key, f"{key} is JSONPath only; {_jsonata_instead(key)}")
        elif language == JSONPATH and key in JSONATA_ONLY_FIELDS:
            checker.report(name, key, f"{key} is JSONata only; set QueryLanguage to JSONata or use JSONPath fields")
    for index, rule in enumerate(state.get("Choices", [])) if kind == "Choice" else ():
        _check_choice_rule(checker, name, f"Choices[{index}]", rule, language)
    for index, catcher in enumerate(state.get("Catch", [])):
        for key in catcher:
            where = f"Catch[{index}].{key}"
            if key not in CATCHER_FIELDS:
                checker.report(name, where, f"a Catch has no {key} field")
            elif language == JSONATA and key == "ResultPath":
                checker.report(name, where, "ResultPath is JSONPath only; in JSONata a Catch uses Output and Assign")
            elif language == JSONPATH and key == "Output":
                checker.report(name, where, "Output is JSONata only; a JSONPath Catch uses ResultPath")
    for part in ("ItemReader", "ItemBatcher", "ResultWriter"):
        for path, key in _keys(state.get(part), (part,)):
            where = format_path((*path, key))
            if language == JSONATA and (key == "Parameters" or key.endswith("Path")) and len(path) <= 2:
                checker.report(name, where, f"{key} is JSONPath only; {_jsonata_instead(key)}")
            elif language == JSONPATH and key == "Arguments" and len(path) == 1:
                checker.report(name, where, "Arguments is JSONata only; a JSONPath state uses Parameters")
    if language == JSONATA:
        # Assign keys are checked as variable names; a JSONPath-only field is reported as a whole.
        for path, key in (pk for field_name, value in _state_fields(state) for pk in _keys(value, (field_name,))):
            if key.endswith(".$") and path[-1] != "Assign" and path[0] not in JSONPATH_ONLY_FIELDS:
                checker.report(name, format_path((*path, key)), "a key ending in .$ is JSONPath; JSONata uses {% %}")


def _check_choice_rule(checker: Checker, name: str, where: str, rule: dict[str, Any], language: str) -> None:
    for key in rule:
        if key not in CHOICE_RULE_FIELDS:
            checker.report(name, f"{where}.{key}", f"a Choice rule has no {key} field")
        elif language == JSONATA and key in JSONPATH_CHOICE_RULE_FIELDS:
            checker.report(name, f"{where}.{key}", f"{key} is JSONPath only; a JSONata Choice rule uses Condition")
        elif language == JSONPATH and key in JSONATA_CHOICE_RULE_FIELDS:
            checker.report(name, f"{where}.{key}", f"{key} is JSONata only; set QueryLanguage to JSONata")
    if language == JSONATA and "Condition" not in rule:
        checker.report(name, where, "a JSONata Choice rule needs a Condition")


def _jsonata_instead(key: str) -> str:
    replacements = {
        "Parameters": "JSONata uses Arguments",
        "ResultSelector": "JSONata shapes the result in Output or Assign with $states.result",
        "ResultPath": "JSONata uses Output (and Assign) with $states.result",
        "InputPath": "JSONata reads $states.input",
        "OutputPath": "JSONata uses Output",
        "Result": "a JSONata Pass state uses Output",
        "ItemsPath": "JSONata uses Items",
    }
    if key in replacements:
        return replacements[key]
    return f"JSONata writes an expression in {key.removesuffix('Path')}"


def _check_assigned_names(checker: Checker, name: str, state: dict[str, Any], language: str, scope: Scope) -> None:
    if "Assign" in state and state.get("Type") in ("Succeed", "Fail"):
        return  # reported as a field the type does not have
    for path, variable in _assignments(state, language):
        where = format_path(path)
        if language == JSONATA and variable.endswith(".$"):
            checker.report(name, where, "a key ending in .$ is JSONPath; JSONata uses {% %}")
        elif variable == "states":
            checker.report(name, where, "$states is reserved and cannot be assigned")
        elif len(variable) > MAX_VARIABLE_NAME:
            checker.report(name, where, f"a variable name is at most {MAX_VARIABLE_NAME} characters")
        elif not variable.isidentifier() or variable.startswith("_"):
            checker.report(name, where, f"{variable!r} is not a variable name (a letter, then letters, digits or _)")
        elif variable in scope.outer_assigned:
            checker.report(name, where, f"${variable} is also assigned outside {scope.enclosing[-1]!r}; "
                                        "an inner scope may not reuse an outer variable's name")  # fmt: skip


# ---------------------------------------------------------------- JSONata expressions
def _check_expressions(checker: Checker, name: str, state: dict[str, Any]) -> list[Read]:
    reads: list[Read] = []
    for key, value in _state_fields(state):
        for path, text in _strings(value, (key,)):
            where = format_path(path)
            if not _is_expression(text):
                if text.lstrip().startswith("{%") or text.rstrip().endswith("%}"):
                    checker.report(
                        name, where, "a JSONata string must start with {% and end with %}, no spaces outside"
                    )
                continue
            if path[0] in CONSTANT_FIELDS or (path[0] in ("Choices", "Catch") and path[2:] == ("Next",)):
                checker.report(name, where, f"{path[-1]} must be a constant, not a JSONata expression")
                continue
            source = SUBSTITUTION.sub("0", text[2:-2])
            try:
                tree = jsonata.Jsonata(source).ast
            except Exception as error:  # jsonata-python raises JException, and a few builtins on odd input
                checker.report(name, where, f"JSONata does not parse: {error} in {text!r}")
                continue
            reads += _expression_reads(checker, name, state, path, tree)
    return reads


def _is_expression(text: str) -> bool:
    return len(text) >= 4 and text.startswith("{%") and text.endswith("%}")


def _expression_reads(
    checker: Checker, name: str, state: dict[str, Any], path: FieldPath, tree: Parser.Symbol
) -> list[Read]:
    where = format_path(path)
    variables, calls, bound, states_fields = _names_in(tree)
    in_catch = path[0] == "Catch" and len(path) > 2 and path[2] in ("Output", "Assign")
    after_result = path[0] in ("Output", "Assign") and state.get("Type") in ("Task", "Parallel", "Map")
    for states_field in sorted(states_fields):
        if states_field not in STATES_FIELDS:
            checker.report(name, where, f"$states has no {states_field!r} (input, result, errorOutput, context)")
        elif states_field == "result" and not after_result:
            checker.report(
                name, where, "$states.result exists only in the Output and Assign of a Task, Parallel or Map"
            )
        elif states_field == "errorOutput" and not in_catch:
            checker.report(name, where, "$states.errorOutput exists only in a Catch's Output and Assign")
    reads = []
    for variable in sorted(variables - bound - BUILT_IN_FUNCTIONS - {"states"}):
        if variable == "eval":
            checker.report(name, where, "$eval is not available in Step Functions; use $parse")
        elif variable in calls:  # a workflow variable holds JSON, never a function
            checker.report(name, where, f"unknown function ${variable}()")
        else:
            reads.append(Read(variable, name, where))
    return reads


def _names_in(tree: Parser.Symbol) -> tuple[set[str], set[str], set[str], set[str]]:
    """(variables read, of those the ones called, names the expression binds, $states.<field> read)."""
    variables: set[str] = set()
    calls: set[str] = set()
    bound: set[str] = set()
    states_fields: set[str] = set()
    seen: set[int] = set()
    pending: list[Any] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, list | tuple):
            pending.extend(node)
            continue
        if not isinstance(node, Parser.Symbol) or id(node) in seen:
            continue
        seen.add(id(node))
        kind = getattr(node, "type", None)
        if kind == "variable" and node.value not in ("", "$"):  # "$" and "$$" are the context, not variables
            variables.add(node.value)
        elif kind == "bind":
            bound.add(node.lhs.value)
        elif kind == "lambda":
            bound.update(argument.value for argument in node.arguments or [])
        elif kind == "function" and getattr(node.procedure, "type", None) == "variable":
            calls.add(node.procedure.value)
        elif kind == "path":
            steps = node.steps or []
            if (
                len(steps) > 1
                and steps[0].type == "variable"
                and steps[0].value == "states"
                and steps[1].type == "name"
            ):
                states_fields.add(steps[1].value)
        for attribute in ("focus", "index"):  # @$x and #$i bind names in a path step
            if isinstance(getattr(node, attribute, None), str):
                bound.add(getattr(node, attribute))
        pending.extend(
            value
            for key, value in vars(node).items()
            if key != "_outer_instance" and isinstance(value, list | Parser.Symbol)
        )
    return variables, calls, bound, states_fields


# ---------------------------------------------------------------- JSONPath states
def _in_jsonata_only_field(path: FieldPath) -> bool:
    if path[0] in JSONATA_ONLY_FIELDS:
        return True
    return path[0] in ("Choices", "Catch") and len(path) > 2 and path[2] in ("Condition", "Output")


def _jsonpath_reads(checker: Checker, name: str, state: dict[str, Any]) -> list[Read]:
    """Variables a JSONPath state reads, and JSONata written where nothing evaluates it."""
    reads = []
    for key, value in _state_fields(state):
        for path, text in _strings(value, (key,)):
            where = format_path(path)
            if _in_jsonata_only_field(path):
                continue  # the field itself is reported
            if text.lstrip().startswith("{%") and text.rstrip().endswith("%}"):
                checker.report(name, where, "JSONata in a JSONPath state is passed on as text; set QueryLanguage")
                continue
            holder = path[-1] if isinstance(path[-1], str) else path[-2]
            evaluated = isinstance(holder, str) and (holder.endswith((".$", "Path")) or holder == "Variable")
            if not evaluated:
                continue
            for variable in sorted(set(JSONPATH_VARIABLE.findall(QUOTED.sub("''", text)))):
                if holder == "ResultPath":
                    checker.report(name, where, f"ResultPath cannot read a variable (${variable})")
                else:
                    reads.append(Read(variable, name, where))
    return reads
