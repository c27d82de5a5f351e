"""Intrinsic functions through the local engine, with the values the AWS documentation gives.

Reference for every case: https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html
"""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from asl_builders import one_pass

from workflow.local.engine import FAILED, SUCCEEDED

pytestmark = pytest.mark.integration

INTRINSICS = "https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html"
NUMBERS = [1, 2, 3, 4, 5, 6, 7, 8, 9]


def _value(run, expression: str, payload: object = None) -> object:
    execution = run(one_pass({"v.$": expression}), payload if payload is not None else {})
    assert execution.status == SUCCEEDED, (execution.error, execution.cause)
    return execution.output["v"]


@pytest.mark.parametrize(
    ("expression", "payload", "expected"),
    [
        # Arrays (INTRINSICS, "Intrinsics for arrays").
        ("States.Array($.Id)", {"Id": 123456}, [123456]),
        ("States.Array('Foo', 2020, $.someJson, null)", {"someJson": {"random": "abcdefg"}},
         ["Foo", 2020, {"random": "abcdefg"}, None]),
        ("States.ArrayPartition($.inputArray, 4)", {"inputArray": NUMBERS},
         [[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
        ("States.ArrayContains($.inputArray, $.lookingFor)", {"inputArray": NUMBERS,
                                                              "lookingFor": 5}, True),
        ("States.ArrayRange(1, 9, 2)", {}, [1, 3, 5, 7, 9]),
        ("States.ArrayGetItem($.inputArray, $.index)", {"inputArray": NUMBERS, "index": 5}, 6),
        ("States.ArrayLength($.inputArray)", {"inputArray": NUMBERS}, 9),
        ("States.ArrayUnique($.inputArray)", {"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]},
         [1, 2, 3, 4]),
        # Data encoding and decoding.
        ("States.Base64Encode($.input)", {"input": "Data to encode"}, "RGF0YSB0byBlbmNvZGU="),
        ("States.Base64Decode($.base64)", {"base64": "RGF0YSB0byBlbmNvZGU="}, "Data to encode"),
        # JSON manipulation: a shallow merge, the right value wins.
        ("States.JsonMerge($.json1, $.json2, false)",
         {"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}},
         {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}),
        ("States.StringToJson($.escapedJsonString)", {"escapedJsonString": '{"foo": "bar"}'},
         {"foo": "bar"}),
        # Math.
        ("States.MathAdd($.value1, $.step)", {"value1": 111, "step": -1}, 110),
        # Strings.
        ("States.StringSplit($.inputString, $.splitter)",
         {"inputString": "1,2,3,4,5", "splitter": ","}, ["1", "2", "3", "4", "5"]),
        ("States.Format('Hello, my name is {}.', $.name)", {"name": "Arnav"},
         "Hello, my name is Arnav."),
    ],
)  # fmt: skip
def test_documented_examples(run, expression, payload, expected):
    assert _value(run, expression, payload) == expected  # INTRINSICS


def test_json_to_string(run):
    # States.JsonToString returns the JSON text of the value. INTRINSICS
    value = _value(run, "States.JsonToString($.foo)", {"foo": {"bar": [1, "x"]}})
    assert json.loads(value) == {"bar": [1, "x"]}


def test_hash_is_the_hex_digest(run):
    # States.Hash(data, algorithm) returns the hex digest; SHA-1 among the algorithms. INTRINSICS
    value = _value(
        run, "States.Hash($.Data, $.Algorithm)", {"Data": "input data", "Algorithm": "SHA-1"}
    )
    assert value == hashlib.sha1(b"input data").hexdigest()


def test_math_random_and_uuid(run):
    # MathRandom(start, end) lies in [start, end); UUID is a version 4 UUID. INTRINSICS
    number = _value(run, "States.MathRandom($.start, $.end)", {"start": 1, "end": 999})
    assert 1 <= number < 999
    assert uuid.UUID(_value(run, "States.UUID()")).version == 4


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # "Reserved characters in intrinsic functions": \' \{ \} \\ stand for ' { } \ and an
        # escaped brace is no States.Format placeholder. INTRINSICS
        (r"States.Format('it\'s {}', $.n)", "it's 1"),
        (r"States.Format('\{\} is literal, {} is not', $.n)", "{} is literal, 1 is not"),
        (r"States.Format('back\\slash {}', $.n)", "back\\slash 1"),
        (r"States.Array('it\'s', 'a\{b\}')", ["it's", "a{b}"]),
    ],
)
def test_escaped_characters_in_string_literals(run, expression, expected):
    assert _value(run, expression, {"n": 1}) == expected


def test_format_renders_null_booleans_and_numbers_as_json(run):
    # States.Format interpolates argument values. INTRINSICS
    assert _value(run, "States.Format('{} {} {} {}', null, true, 1.5, 'x')") == "null true 1.5 x"


def test_format_renders_objects_as_step_functions_does(run):
    # AWS documents no example for objects; Step Functions renders them Java-style
    # ({a=[1, x]}), which LocalStack's AWS-recorded snapshots of States.Format show and moto
    # keeps. Pinned so a change is noticed (README, "Local mode").
    assert _value(run, "States.Format('{}', $.o)", {"o": {"a": [1, "x"]}}) == "{a=[1, x]}"


def test_too_few_format_arguments_fail_the_state(run):
    # An intrinsic that cannot be evaluated fails the state (no partial string).
    execution = run(one_pass({"v.$": "States.Format('{} {}', $.n)"}), {"n": 1})
    assert execution.status == FAILED
