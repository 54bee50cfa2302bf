"""JSONata for the local Step Functions engine: jsonata-python behind moto's evaluator hook.

moto 5.2.5 interprets ASL itself but evaluates every JSONata expression through one module-level
hook, ``moto.stepfunctions.parser.asl.jsonata.jsonata._eval_jsonata``, which it ships empty (the
LocalStack code it comes from fills it with a JVM). ``install()`` fills it with ``evaluate``:
jsonata-python plus the functions AWS adds to JSONata ($partition, $range, $hash, $random, $uuid,
$parse), with failures raised as AWS's ``States.QueryEvaluationError`` so Retry and Catch match it.

moto calls the hook with one string: the state's expression wrapped in a block that first declares
its own stand-ins for AWS's functions, then ``$states`` and every workflow variable as literals,
``($partition:=function(...){...};$states:={...};$var:=...;<expression>)``.

The hook is the one thing the engine sets in moto. What AWS does and moto does not, the hook does from
inside, reading (never changing) moto's objects in the frames that called it: it writes string variables
into the block JSON-encoded where moto leaves their quotes and backslashes bare, fails a Choice
``Condition`` that is not a boolean with States.QueryEvaluationError (moto: a bare RuntimeError), and raises
its errors as moto raises its own, as state errors in the state's environment. ``install()`` also makes
jsonata-python's signatures type null as JSONata does; importing the module changes nothing.

jsonata-python (0.7.1) is a port of JSONata 2.0.6, the version AWS implements; where its built-ins give
other results or uncoded errors, the JavaScript originals are ported here (bench/jsonata_conformance.py
measures the whole against JSONata's own test suite).

    from local_runtime.jsonata_engine import evaluate
    evaluate("$hash('abc', 'SHA-256')")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import re
import sys
import uuid
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, Final, NoReturn

from jsonata import Jsonata
from jsonata.constants import Constants
from jsonata.functions import Functions
from jsonata.jexception import JException
from jsonata.signature import Signature
from jsonata.utils import Utils
from moto.stepfunctions.parser.api import EvaluationFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.string.string_expression import StringJSONata
from moto.stepfunctions.parser.asl.component.intrinsic import jsonata as moto_functions
from moto.stepfunctions.parser.asl.component.state.choice.comparison.comparison import ConditionStringJSONata
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str


class Undefined:
    """What an expression that selects nothing gives: JSON has no value for it, unlike null."""

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = Undefined()


class JSONataError(Exception):
    """An evaluation that fails; AWS reports it as States.QueryEvaluationError.

    ``code`` is JSONata's error code (T2001, D3030, S0201, ...) where the failure has one.
    """

    def __init__(self, code: str | None, message: str) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code


def _fail(message: str) -> NoReturn:
    raise JSONataError(None, message)


# AWS's functions. AWS: "Built-in JSONata functions that require integer values as parameters will
# automatically round down any non-integer numbers provided", hence the floors.
def _partition(array: list[Any], size: float) -> list[list[Any]]:
    size = math.floor(size)
    if size < 1:
        _fail(f"$partition: the chunk size must be a positive integer, got {size}")
    return [list(array[start : start + size]) for start in range(0, len(array), size)]


def _range(start: float, end: float, step: float) -> list[int]:
    start, end, step = math.floor(start), math.floor(end), math.floor(step)
    if step == 0:
        _fail("$range: the step must not be 0")
    # "...until the end value is reached or exceeded": the end itself is in the array.
    values = list(range(start, end + (1 if step > 0 else -1), step))
    # $range is AWS's JSONata form of States.ArrayRange, whose arrays hold at most 1000 items.
    if len(values) > 1000:
        _fail(f"$range: arrays cannot hold more than 1000 items, this one would hold {len(values)}")
    return values


_HASHES: Final = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(data: str, algorithm: str) -> str:
    if algorithm not in _HASHES:
        _fail(f"$hash: the algorithm must be one of {', '.join(_HASHES)}, got '{algorithm}'")
    return hashlib.new(_HASHES[algorithm], data.encode()).hexdigest()


def _random(seed: float | None = None) -> float:
    # Overloads JSONata's own $random, which takes no seed; the same seed gives the same number.
    if seed is None:
        return random.random()  # noqa: S311 - AWS's $random is no cryptographic generator either
    return random.Random(math.floor(seed)).random()  # noqa: S311


def _uuid() -> str:
    return str(uuid.uuid4())


def _parse(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as error:
        _fail(f"$parse: the argument is not a JSON string: {error}")
    return _to_jsonata(value)


def _no_eval(*_: Any) -> None:
    _fail("$eval is not available in Step Functions; use $parse")


# jsonata-python (0.7.1) against JSONata 2.0.6, which AWS implements: where a built-in gives another result,
# or lets a bare Python error out where JSONata raises its coded error, the JavaScript original, ported.
def _number(value: Any) -> float | None:
    if value is None:  # undefined in, undefined out, as with JSONata's own functions
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([Ee][-+]?[0-9]+)?", value) and math.isfinite(float(value)):
            return float(value)
        if re.match(r"^(0[xX][0-9A-Fa-f]+)|(0[oO][0-7]+)|(0[bB][0-1]+)$", value):
            with contextlib.suppress(ValueError):
                return int(value, 0)
    raise JException("D3030", -1, value)


def _sort(array: list[Any] | None, comparator: Any = None) -> list[Any] | None:
    """JSONata's merge sort: the comparator says whether a goes after b; jsonata-python hands it to Python's
    sort as -1 or 1, never 0, which reorders equal items."""
    if array is None:
        return None
    if comparator is None:
        if not (Utils.is_array_of_numbers(array) or Utils.is_array_of_strings(array)):
            raise JException("D3070", -1)
        return sorted(array)

    def merge_sort(items: list[Any]) -> list[Any]:
        if len(items) <= 1:
            return items
        left, right = merge_sort(items[: len(items) // 2]), merge_sort(items[len(items) // 2 :])
        merged, i, j = [], 0, 0
        while i < len(left) and j < len(right):
            after = Functions.func_apply(comparator, [left[i], right[j]])
            if after in (None, False, 0, "", Utils.NULL_VALUE):  # JavaScript's falsy values
                merged.append(left[i])
                i += 1
            else:
                merged.append(right[j])
                j += 1
        return merged + left[i:] + right[j:]

    return merge_sort(list(array))


def _power(base: float | None, exponent: float) -> float | None:
    if base is None:
        return None
    try:
        result = float(base) ** float(exponent)
    except (OverflowError, ZeroDivisionError):
        result = math.inf
    if isinstance(result, complex) or not math.isfinite(result):
        raise JException("D3061", -1, base, exponent)
    return result


# jsonata-python's signature checks take null for a missing argument, so $split('a,b', ',', null) goes on
# where JSONata fails it with T0410: in JSONata's signatures null is a type of its own, "l". Put in place by
# install(), or by the first evaluate(), not on import; the original is kept on the replacement, so that a
# reloaded module still finds it.
_symbol_of: Final = getattr(Signature.get_symbol, "original", Signature.get_symbol)


def _symbol_with_null(self: Signature, value: Any) -> str:
    return "l" if value is Utils.NULL_VALUE else _symbol_of(self, value)


_symbol_with_null.original = _symbol_of  # type: ignore[attr-defined]


def _typed_null() -> None:
    Signature.get_symbol = _symbol_with_null  # type: ignore[method-assign]


def _native(name: str) -> Any:
    return Jsonata.static_frame.lookup(name)


def _coded(name: str, code: str, *errors: type[Exception]) -> Callable[..., Any]:
    """jsonata-python's own $name, with the Python errors it lets out raised as JSONata's ``code``."""

    def call(*args: Any) -> Any:
        try:
            return _native(name).call(None, list(args))
        except errors as error:
            raise JException(code, -1, name, args[0] if args else None) from error

    return call


# JSONata's test for the ISO 8601 timestamps $toMillis reads without a picture; Python's parser also
# takes "2018-02-03 11:15:33", which Step Functions refuses.
_ISO_8601: Final = re.compile(r"\d{4}(-[01]\d)*(-[0-3]\d)*(T[0-2]\d:[0-5]\d:[0-5]\d)*(\.\d+)?([+-][0-2]\d:?[0-5]\d|Z)?")


def _to_millis(timestamp: str | None, picture: str | None = None) -> Any:
    if timestamp is not None and picture is None and not _ISO_8601.fullmatch(timestamp):
        raise JException("D3110", -1, timestamp)
    return _native("toMillis").call(None, [timestamp, picture])


def _replace(text: str | None, pattern: Any, replacement: Any, limit: float | None = None) -> Any:
    """jsonata-python hands a replacement function the whole match as groups[0]; JSONata's groups are the
    captures only."""
    if Utils.is_function(replacement) or Functions.is_lambda(replacement):
        function = replacement
        replacement = Jsonata.JLambda(
            lambda match: Functions.func_apply(function, [{**match, "groups": match["groups"][1:]}])
        )
    return _native("replace").call(None, [text, pattern, replacement, limit])


# Name -> (implementation, JSONata signature); the signature gives AWS's functions JSONata's own
# argument checks (T0410 and friends) and turns a single value into an array where one is expected.
FUNCTIONS: Final[dict[str, tuple[Callable[..., Any], str]]] = {
    "partition": (_partition, "<an:a<a>>"),
    "range": (_range, "<nnn:a<n>>"),
    "hash": (_hash, "<ss:s>"),
    "random": (_random, "<n?:n>"),
    "uuid": (_uuid, "<:s>"),
    "parse": (_parse, "<s:x>"),
    "eval": (_no_eval, "<xx?:x>"),  # AWS: "$eval is not supported in Step Functions workflows"
    # jsonata-python's built-ins, put right (signatures as jsonata-python declares them)
    "number": (_number, "<(nsb)-:n>"),
    "sort": (_sort, "<af?:a>"),
    "power": (_power, "<n-n:n>"),
    "encodeUrl": (_coded("encodeUrl", "D3140", UnicodeError), "<s-:s>"),
    "encodeUrlComponent": (_coded("encodeUrlComponent", "D3140", UnicodeError), "<s-:s>"),
    "decodeUrl": (_coded("decodeUrl", "D3140", UnicodeError), "<s-:s>"),
    "decodeUrlComponent": (_coded("decodeUrlComponent", "D3140", UnicodeError), "<s-:s>"),
    "toMillis": (_to_millis, "<s-s?:n>"),
    "replace": (_replace, "<s-(sf)(sf)n?:s>"),
}

# Errors of JSONata's catalogue that jsonata-python raises without their code, as a RuntimeError with its
# own message constant or as a JException whose code is the message; the code they have in JSONata.
_UNCODED: Final = {
    Constants.ERR_MSG_SEQUENCE_UNSUPPORTED: "D3130",
    Constants.ERR_MSG_DIFF_DECIMAL_GROUP: "D3131",
    Constants.ERR_MSG_UNKNOWN_COMPONENT_SPECIFIER: "D3132",
    Constants.ERR_MSG_INVALID_NAME_MODIFIER: "D3133",
    Constants.ERR_MSG_TIMEZONE_FORMAT: "D3134",
    Constants.ERR_MSG_NO_CLOSING_BRACKET: "D3135",
    Constants.ERR_MSG_MISSING_FORMAT: "D3136",
    "Type parameters can only be applied to functions and arrays": "S0401",
    "Choice groups containing parameterized types are not supported": "S0402",
    "Second argument of replace function cannot be an empty string": "D3010",
    "Fourth argument of replace function must evaluate to a positive number": "D3011",
}


def _to_jsonata(value: Any) -> Any:
    """JSON from Python to jsonata-python, which reads a bare None as undefined rather than null."""
    if value is None:
        return Utils.NULL_VALUE
    if isinstance(value, dict):
        return {key: _to_jsonata(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_jsonata(item) for item in value]
    return value


def _to_json(value: Any) -> Any:
    """A result as plain JSON values; a function in it cannot be written as JSON, so it fails like AWS."""
    if value is Utils.NULL_VALUE or value is None:
        return None
    if isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        # JSONata numbers are doubles: 4/2 is 2, written as 2, not 2.0, as JavaScript would.
        return int(value) if value.is_integer() and abs(value) < 1e21 else value
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    raise JSONataError(None, "the result is a function, which JSON cannot represent")


# A \u escape pair that encodes one character beyond the Basic Multilingual Plane (an emoji): JSONata, in
# JavaScript, reads it as that character; jsonata-python as two lone surrogates, which no UTF-8 text can hold
# ($hash fails, moto cannot write the output). moto writes $states and object variables into the expression
# with such escapes (json.dumps' ensure_ascii). The backslashes before the pair must be even in number, or
# the first one is an escaped backslash followed by the text "ud83d". (A `name` in backticks takes no escapes,
# so one holding such text would be read as the character: a name no JSON key from moto can produce.)
_SURROGATE_PAIR: Final = re.compile(r"(?<!\\)((?:\\\\)*)\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})")


def _joined_surrogates(expression: str) -> str:
    if "\\u" not in expression:
        return expression
    return _SURROGATE_PAIR.sub(lambda pair: pair[1] + bytes.fromhex(pair[2] + pair[3]).decode("utf-16-be"), expression)


def evaluate(
    expression: str,
    data: Any = UNDEFINED,
    bindings: Mapping[str, Any] | None = None,
    *,
    timeout_ms: int | None = None,
    max_depth: int | None = None,
) -> Any:
    """``expression`` evaluated on ``data`` (JSON), with AWS's functions and ``bindings`` as $variables.

    Returns JSON values, or UNDEFINED when the expression selects nothing; raises JSONataError.
    """
    if Signature.get_symbol is not _symbol_with_null:
        _typed_null()
    try:
        compiled = Jsonata(_joined_surrogates(expression), timeout=timeout_ms, stack=max_depth)
        for name, (function, signature) in FUNCTIONS.items():
            compiled.register_function(name, Jsonata.JFunction(Jsonata.JLambda(function), signature))
        compiled.set_output_convert_nulls(False)  # keep JSON null apart from undefined
        result = compiled.evaluate(
            None if data is UNDEFINED else _to_jsonata(data),
            {name: _to_jsonata(value) for name, value in (bindings or {}).items()},
        )
    except JSONataError:
        raise
    except JException as error:
        code = _UNCODED.get(error.error, error.error)
        raise JSONataError(code, str(error) if code == error.error else error.error) from error
    except RecursionError as error:
        raise JSONataError("D1011", "the expression recursed too deeply") from error
    except Exception as error:  # anything else jsonata-python raises is still this expression failing
        raise JSONataError(_UNCODED.get(str(error)), f"{type(error).__name__}: {error}") from error
    return UNDEFINED if result is None else _to_json(result)


# ----------------------------------------------------------------------------------------- moto
# moto's stand-ins for AWS's functions ($hash and $uuid only return "not supported" strings), which
# it declares inside the block and so would shadow ours: taken out of the text before evaluating.
_MOTO_STAND_INS: Final = tuple(moto_functions._DECLARATION_BY_VARIABLE_REFERENCE.values())


class _Caller:
    """The moto evaluation that called the hook, read from its frames: the hook gets one string, but AWS's
    errors name the expression as written, a state error (what Retry and Catch see) needs the state's
    environment, and the Condition check needs to know what the expression is for."""

    __slots__ = ("env", "frame", "owner", "text")

    def __init__(self, env: Environment, text: str, frame: FrameType, owner: object) -> None:
        self.env, self.text, self.frame, self.owner = env, text, frame, owner

    @classmethod
    def find(cls, frame: FrameType | None) -> _Caller | None:
        """The nearest frame up from ``frame`` that has the state's ``env``: StringJSONata._eval_body, or
        the validation that calls the hook again with $exists(...) or $type(...) around the block."""
        while frame is not None:
            local = frame.f_locals
            env = local.get("env")
            if isinstance(env, Environment):
                owner = local.get("self")
                return cls(env, local.get("expression") or getattr(owner, "expression", ""), frame, owner)
            frame = frame.f_back
        return None

    def is_condition(self) -> bool:
        """Whether the expression is a Choice rule's Condition: a StringJSONata evaluating itself (not a
        validation's second call) for the ConditionStringJSONata that holds it."""
        owner = self.owner
        if not isinstance(owner, StringJSONata):
            return False
        frame = self.frame.f_back
        while frame is not None and frame.f_locals.get("self") is owner:  # EvalComponent.eval
            frame = frame.f_back
        rule = frame.f_locals.get("self") if frame is not None else None
        return isinstance(rule, ConditionStringJSONata) and rule.string_jsonata is owner


def _json_declarations(bindings: Mapping[str, Any]) -> str:
    """``$name:=<JSON>;`` for each binding. Strings keep their characters, only what JSON must escape is
    escaped: so the text is moto's own wherever moto's is right (a plain string, a number, an ASCII object)."""
    return "".join(
        f"${name}:={json.dumps(value, ensure_ascii=False, separators=(',', ':'), default=str)};"
        for name, value in bindings.items()
    )


# (moto's declarations, ours): the last pair computed. moto keeps one declarations string per variable
# store until a variable is set, so the same object again means the same variables.
# moto's declarations text (the same object until a variable changes) -> declarations by the names read.
_declarations_cache: tuple[str, dict[frozenset[str], str]] = ("", {})
_VARIABLE_READ = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _with_the_variables_read(expression: str, caller: _Caller) -> str:
    """moto writes every workflow variable into the block before every expression, and each string as "<text>"
    unescaped (variable_store.py). So a value that holds a quote or a backslash (an error Cause, JSON in a
    string) breaks every later expression, and every expression parses every variable: the run's settings
    and the gate's evaluation, kilobytes each, hundreds of times a run. The block gets instead only the
    variables the expression as written reads, JSON-encoded. (A name the expression binds itself, or a
    function's, may be declared too: harmless, since the expression's own binding comes later.)"""
    global _declarations_cache
    store = caller.env.variable_store
    moto_text = store.get_variable_declarations()  # moto's cached text, exactly what it put in the block
    if not moto_text:
        return expression
    cached_moto_text, by_names = _declarations_cache
    if cached_moto_text is not moto_text:
        by_names = {}
        _declarations_cache = (moto_text, by_names)
    names = frozenset(_VARIABLE_READ.findall(caller.text))
    fixed = by_names.get(names)
    if fixed is None:
        # moto's order: the outer scope's variables (a Map's or Parallel's enclosing ones), then the inner.
        scopes = (store._outer_scope, store._inner_scope)
        fixed = "".join(_json_declarations({k: v for k, v in scope.items() if k in names}) for scope in scopes)
        by_names[names] = fixed
    # The declarations come right before the expression as written, and the block ends with it: the last
    # occurrence of the two together is moto's (a value could repeat the declarations' text before them).
    at = expression.rfind(moto_text + caller.text)
    if at < 0:
        at = expression.find(moto_text)
    return expression[:at] + fixed + expression[at + len(moto_text) :]


def _moto_hook(expression: str) -> Any:
    for stand_in in _MOTO_STAND_INS:
        expression = expression.replace(stand_in, "")
    # The frames are read once (a few microseconds): for the variables the expression reads, an error to
    # report, or a result that is not a boolean (which a Condition must give).
    caller = _Caller.find(sys._getframe(1))
    if caller is not None:
        expression = _with_the_variables_read(expression, caller)
    try:
        result = evaluate(expression)
    except JSONataError as error:
        if caller is None:
            raise
        _fail_state(caller.env, f"The JSONata expression '{caller.text}' threw an error during evaluation. {error}")
    if result is UNDEFINED:
        # moto tells null from undefined itself, with a second call: $exists(<expression>).
        return None
    if not isinstance(result, bool) and caller is not None and caller.is_condition():
        # moto fails a Condition that is not true or false with a bare RuntimeError (States.Runtime);
        # AWS documents a result of the wrong type for a field as States.QueryEvaluationError.
        _fail_state(
            caller.env,
            f"The JSONata expression '{caller.text}' specified for the field 'Condition' returned an "
            f"unexpected result type. Expected 'boolean', but was {to_json_str(result)}.",
        )
    return result


def _fail_state(env: Environment, cause: str) -> NoReturn:
    """Raises States.QueryEvaluationError as moto raises its own JSONata failures (jsonata/validations.py)."""
    name = StatesErrorName(typ=StatesErrorNameType.StatesQueryEvaluationError)
    details = EvaluationFailedEventDetails(error=name.error_name, cause=cause)
    failure = FailureEventException(
        FailureEvent(
            env=env,
            error_name=name,
            event_type=HistoryEventType.EvaluationFailed,
            event_details=EventDetails(evaluationFailedEventDetails=details),
        )
    )
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.EvaluationFailed,
        event_details=EventDetails(evaluationFailedEventDetails=failure.get_evaluation_failed_event_details()),
    )
    raise failure


def install() -> None:
    """Makes moto evaluate JSONata with ``evaluate``: fills moto's hook, the one moto attribute it sets;
    idempotent."""
    _typed_null()
    moto_jsonata._eval_jsonata = _moto_hook


def installed() -> bool:
    """Whether moto's hook is ours, and jsonata-python's signatures type null."""
    return moto_jsonata._eval_jsonata is _moto_hook and Signature.get_symbol is _symbol_with_null
