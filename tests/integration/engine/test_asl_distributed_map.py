"""Distributed Map in the local engine, with AWS Step Functions' results (each test cites it).

Items from the state input or an `ItemReader` on the local S3 store, `ItemBatcher`, tolerated
failures, `ResultWriter`, child executions and their context object, in JSONPath and JSONata.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from asl_builders import ConcurrencyProbe, lambda_task, machine
from test_exec_cli import main  # noqa: F401 - the `python -m workflow` fixture

from workflow.local.clients import LocalS3
from workflow.local.engine import FAILED, SUCCEEDED, LocalEngine, LocalExecution
from workflow.local.store import LocalStore

pytestmark = pytest.mark.integration

DMAP = "https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html"
THRESHOLD = DMAP + "#maprun-fail-threshold"
READER = "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html"
BATCHER = "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itembatcher.html"
WRITER = "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html"
CONTEXT = "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html"
JSONATA = "https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html"
GET_OBJECT = "arn:aws:states:::s3:getObject"
RUN_TIMEOUT = 60.0

Run = Callable[..., LocalExecution]


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def engine(make_engine: Callable[..., LocalEngine], store: LocalStore) -> LocalEngine:
    """The contract suite's engine, with the local S3 store (overrides conftest's)."""
    return make_engine(s3=LocalS3(store))


def processor(states: dict[str, Any] | None = None, **config: Any) -> dict[str, Any]:
    """An ItemProcessor in DISTRIBUTED mode (default: a Pass echoing its input)."""
    return {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD", **config},
        "StartAt": next(iter(states)) if states else "Echo",
        "States": states or {"Echo": {"Type": "Pass", "End": True}},
    }


def dmap(**fields: Any) -> dict[str, Any]:
    """A machine of one DISTRIBUTED Map state `M`."""
    state = {"Type": "Map", "ItemProcessor": processor(), "End": True, **fields}
    return machine({"M": state})


def ok(execution: LocalExecution) -> Any:
    assert execution.status == SUCCEEDED, (execution.error, execution.cause)
    return execution.output


# -- items and the context object ----------------------------------------------------------------


def test_items_path_and_item_selector_with_map_item_context(run: Run) -> None:
    # DMAP (ItemsPath, ItemSelector) and CONTEXT ("$$.Map.Item.Index", "$$.Map.Item.Value" in
    # ItemSelector): one child execution per item; the Map's output is the children's outputs
    # in item order.
    selector = {"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value", "k.$": "$.k"}
    out = ok(run(dmap(ItemsPath="$.xs", ItemSelector=selector), {"xs": ["a", "b"], "k": 7}))
    assert out == [{"index": 0, "value": "a", "k": 7}, {"index": 1, "value": "b", "k": 7}]


def test_each_child_is_its_own_execution(run: Run, engine: LocalEngine) -> None:
    # DMAP ("Each child workflow execution has its own execution history, separate from the
    # parent's"; Label names the Map Run): the child's $$.Execution has its own ARN under
    # `<machine>/<Label>` and the item as its input.
    echo = {"Type": "Pass", "Parameters": {"ctx.$": "$$"}, "End": True}
    definition = dmap(Label="Scan", ItemProcessor=processor({"Ctx": echo}))
    out = ok(run(definition, [{"n": 1}], state_machine_name="parent"))
    ctx = out[0]["ctx"]
    assert ctx["Execution"]["Id"].startswith(
        "arn:aws:states:us-east-1:123456789012:execution:parent/Scan:"
    )
    assert ctx["Execution"]["Input"] == {"n": 1}
    assert ctx["StateMachine"]["Name"] == "parent/Scan"
    assert "Map" not in ctx  # $$.Map exists in the parent's ItemSelector, not in the child
    children = [e for e in engine.executions if e.state_machine_name == "parent/Scan"]
    assert [c.status for c in children] == [SUCCEEDED]


def test_express_children_and_max_concurrency(run: Run, engine: LocalEngine) -> None:
    # DMAP (ExecutionType STANDARD or EXPRESS; MaxConcurrency bounds the child executions
    # running at once): with MaxConcurrency 1 no two children overlap.
    probe = ConcurrencyProbe()
    engine.register_lambda("slow", probe)
    states = {"Work": {**lambda_task("slow"), "OutputPath": "$.Payload"}}
    definition = dmap(MaxConcurrency=1, ItemProcessor=processor(states, ExecutionType="EXPRESS"))
    assert ok(run(definition, [1, 2, 3])) == [1, 2, 3]
    assert probe.peak == 1


def test_nested_distributed_maps_in_a_parallel_branch(run: Run) -> None:
    # DMAP (a child workflow may hold its own Distributed Map; a Parallel branch may hold one):
    # each level batches its own items.
    inner = {
        "Inner": {
            "Type": "Map",
            "ItemBatcher": {"MaxItemsPerBatch": 2},
            "ItemProcessor": processor(),
            "End": True,
        }
    }
    outer = {"Type": "Map", "ItemProcessor": processor(inner), "End": True}
    definition = machine(
        {"P": {"Type": "Parallel", "Branches": [machine({"M": outer})], "End": True}}
    )
    out = ok(run(definition, [[1, 2, 3], [4]]))
    assert out == [[[{"Items": [1, 2]}, {"Items": [3]}], [{"Items": [4]}]]]


def test_stopping_the_parent_stops_its_children(engine: LocalEngine) -> None:
    # DMAP (child executions belong to the Map Run of their parent): StopExecution of the
    # parent aborts the Map Run's running children.
    wait = {"Nap": {"Type": "Wait", "Seconds": 3000, "End": True}}
    parent = engine.start_execution(dmap(ItemProcessor=processor(wait)), [1, 2])
    deadline = time.monotonic() + RUN_TIMEOUT
    while len(engine.executions) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    parent.stop(error="Stop")
    parent.wait(RUN_TIMEOUT)
    children = [e for e in engine.executions if e is not parent]
    for child in children:
        child.wait(RUN_TIMEOUT)
    assert parent.status == "ABORTED"
    assert [c.status for c in children] == ["ABORTED", "ABORTED"]


# -- ItemReader ----------------------------------------------------------------------------------


def test_item_reader_json_with_max_items(run: Run, store: LocalStore) -> None:
    # READER (InputType JSON: the object is a JSON array; MaxItems limits the items read).
    store.put_json("s3://data/in/items.json", [{"a": 1}, {"a": 2}, {"a": 3}])
    reader = {
        "Resource": GET_OBJECT,
        "ReaderConfig": {"InputType": "JSON", "MaxItems": 2},
        "Parameters": {"Bucket": "data", "Key.$": "$.key"},
    }
    assert ok(run(dmap(ItemReader=reader), {"key": "in/items.json"})) == [{"a": 1}, {"a": 2}]


def test_item_reader_csv_first_row_headers(run: Run, store: LocalStore) -> None:
    # READER (CSV, CSVHeaderLocation FIRST_ROW: each row becomes an object keyed by the header
    # row; every value is a string).
    store.put_bytes("s3://data/rows.csv", b"name,age\nann,3\nbob,4\n")
    reader = {
        "Resource": GET_OBJECT,
        "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
        "Parameters": {"Bucket": "data", "Key": "rows.csv"},
    }
    out = ok(run(dmap(ItemReader=reader)))
    assert out == [{"name": "ann", "age": "3"}, {"name": "bob", "age": "4"}]


def test_item_reader_csv_given_headers_and_delimiter(run: Run, store: LocalStore) -> None:
    # READER (CSVHeaderLocation GIVEN with CSVHeaders: the first row is data; CSVDelimiter
    # SEMICOLON splits on ';').
    store.put_bytes("s3://data/rows.txt", b"ann;3\nbob;4\n")
    reader = {
        "Resource": GET_OBJECT,
        "ReaderConfig": {
            "InputType": "CSV",
            "CSVHeaderLocation": "GIVEN",
            "CSVHeaders": ["name", "age"],
            "CSVDelimiter": "SEMICOLON",
        },
        "Parameters": {"Bucket": "data", "Key": "rows.txt"},
    }
    out = ok(run(dmap(ItemReader=reader)))
    assert out == [{"name": "ann", "age": "3"}, {"name": "bob", "age": "4"}]


def test_item_reader_jsonl_and_max_items_path(run: Run, store: LocalStore) -> None:
    # READER (InputType JSONL: one item per line; MaxItemsPath reads the limit from the input).
    store.put_bytes("s3://data/x.jsonl", b'{"v": 1}\n{"v": 2}\n{"v": 3}\n')
    reader = {
        "Resource": GET_OBJECT,
        "ReaderConfig": {"InputType": "JSONL", "MaxItemsPath": "$.limit"},
        "Parameters": {"Bucket": "data", "Key": "x.jsonl"},
    }
    assert ok(run(dmap(ItemReader=reader), {"limit": 2})) == [{"v": 1}, {"v": 2}]
    bad = run(dmap(ItemReader=reader), {"limit": -1})
    assert (bad.error, bad.cause) == (
        "States.ItemReaderFailed",
        "MaxItems evaluated to -1; it must be an integer >= 0 and at most 100000000",
    )


def test_item_reader_s3_inventory_manifest(run: Run, store: LocalStore) -> None:
    # READER (InputType MANIFEST: an S3 Inventory manifest.json; the items are the rows of the
    # inventory CSV files it lists, named by its fileSchema).
    store.put_bytes("s3://inv/data/part-0.csv", b'"src","a.jpg","10"\n"src","b.jpg","20"\n')
    store.put_json(
        "s3://inv/manifest.json",
        {
            "sourceBucket": "src",
            "destinationBucket": "arn:aws:s3:::inv",
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, Size",
            "files": [{"key": "data/part-0.csv", "size": 40}],
        },
    )
    reader = {
        "Resource": GET_OBJECT,
        "ReaderConfig": {"InputType": "MANIFEST"},
        "Parameters": {"Bucket": "inv", "Key": "manifest.json"},
    }
    out = ok(run(dmap(ItemReader=reader)))
    assert out == [
        {"Bucket": "src", "Key": "a.jpg", "Size": "10"},
        {"Bucket": "src", "Key": "b.jpg", "Size": "20"},
    ]


def test_item_reader_list_objects_v2(run: Run, store: LocalStore) -> None:
    # READER (s3:listObjectsV2: each item describes one object: Etag, Key, LastModified (epoch
    # seconds), Size, StorageClass).
    store.put_bytes("s3://imgs/train/a.jpg", b"abc")
    store.put_bytes("s3://imgs/train/b.jpg", b"defg")
    store.put_bytes("s3://imgs/other.txt", b"x")
    reader = {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "imgs", "Prefix": "train/"},
    }
    out = ok(run(dmap(ItemReader=reader)))
    assert [(o["Key"], o["Size"], o["StorageClass"]) for o in out] == [
        ("train/a.jpg", 3, "STANDARD"),
        ("train/b.jpg", 4, "STANDARD"),
    ]
    assert out[0]["Etag"] == '"' + hashlib.md5(b"abc", usedforsecurity=False).hexdigest() + '"'
    assert isinstance(out[0]["LastModified"], int)


def test_item_reader_missing_object_fails_with_item_reader_failed(run: Run) -> None:
    # READER / DMAP: an ItemReader that cannot read its source fails the state with
    # States.ItemReaderFailed.
    reader = {
        "Resource": GET_OBJECT,
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "data", "Key": "absent.json"},
    }
    execution = run(dmap(ItemReader=reader))
    assert (execution.status, execution.error) == (FAILED, "States.ItemReaderFailed")


def test_parquet_is_refused_with_a_sentence(run: Run, store: LocalStore) -> None:
    # READER lists PARQUET among the InputType values: the document is valid, but the kit has
    # no Parquet reader, so the local run fails the reader with a sentence saying so.
    store.put_bytes("s3://data/x.parquet", b"PAR1")
    reader = {
        "Resource": GET_OBJECT,
        "ReaderConfig": {"InputType": "PARQUET"},
        "Parameters": {"Bucket": "data", "Key": "x.parquet"},
    }
    execution = run(dmap(ItemReader=reader))
    assert execution.error == "States.ItemReaderFailed"
    assert "Parquet" in (execution.cause or "")


# -- ItemBatcher ---------------------------------------------------------------------------------


def test_item_batcher_max_items_and_batch_input(run: Run) -> None:
    # BATCHER: each child gets {"Items": [...], "BatchInput": ...}, at most MaxItemsPerBatch
    # items; BatchInput is evaluated against the state input.
    batcher = {"MaxItemsPerBatch": 2, "BatchInput": {"job.$": "$.job"}}
    out = ok(run(dmap(ItemsPath="$.xs", ItemBatcher=batcher), {"xs": [1, 2, 3], "job": "j"}))
    assert out == [
        {"Items": [1, 2], "BatchInput": {"job": "j"}},
        {"Items": [3], "BatchInput": {"job": "j"}},
    ]


def test_item_batcher_max_input_bytes(run: Run) -> None:
    # BATCHER (MaxInputBytesPerBatch: a batch never exceeds this many bytes of input).
    items = ["x" * 40] * 4
    out = ok(run(dmap(ItemBatcher={"MaxInputBytesPerBatch": 110}), items))
    assert [len(batch["Items"]) for batch in out] == [2, 2]


# -- tolerated failures --------------------------------------------------------------------------

FAIL_ODD = {
    "Odd": {
        "Type": "Choice",
        "Choices": [{"Variable": "$", "NumericEquals": 1, "Next": "Boom"}],
        "Default": "Fine",
    },
    "Boom": {"Type": "Fail", "Error": "Odd", "Cause": "one is odd"},
    "Fine": {"Type": "Pass", "End": True},
}


def test_any_failed_item_exceeds_the_default_threshold_and_is_catchable(run: Run) -> None:
    # THRESHOLD (the default tolerance is 0: one failed child fails the Map state with
    # States.ExceedToleratedFailureThreshold, which Catch can catch by name).
    catch = [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "Caught"}]
    definition = machine(
        {
            "M": {
                "Type": "Map",
                "ItemProcessor": processor(FAIL_ODD),
                "Catch": catch,
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        }
    )
    out = ok(run(definition, [0, 1, 2]))
    assert out["Error"] == "States.ExceedToleratedFailureThreshold"
    uncaught = run(dmap(ItemProcessor=processor(FAIL_ODD)), [0, 1])
    assert (uncaught.status, uncaught.error) == (FAILED, "States.ExceedToleratedFailureThreshold")
    kinds = [event["type"] for event in uncaught.history()]
    assert (
        kinds.index("MapRunStarted") < kinds.index("MapRunFailed") < kinds.index("MapStateFailed")
    )


def test_tolerated_failure_count_keeps_failed_records(run: Run) -> None:
    # THRESHOLD (ToleratedFailureCount 1: one failed item is tolerated) and WRITER ("If a child
    # workflow execution fails, Step Functions returns its execution result unchanged", the
    # NONE record with Error and Cause).
    out = ok(run(dmap(ItemProcessor=processor(FAIL_ODD), ToleratedFailureCount=1), [0, 1, 2]))
    assert out[0] == 0 and out[2] == 2
    failed = out[1]
    assert (failed["Status"], failed["Error"], failed["Cause"]) == ("FAILED", "Odd", "one is odd")
    assert json.loads(failed["Input"]) == 1


def test_tolerated_failure_percentage_path(run: Run) -> None:
    # THRESHOLD (ToleratedFailurePercentagePath: 1 failed of 4 items is 25 %, within 30 %,
    # beyond 20 %).
    items_definition = dmap(
        ItemsPath="$.xs", ItemProcessor=processor(FAIL_ODD), ToleratedFailurePercentagePath="$.pct"
    )
    assert run(items_definition, {"xs": [0, 1, 2, 3], "pct": 30}).status == SUCCEEDED
    beyond = run(items_definition, {"xs": [0, 1, 2, 3], "pct": 20})
    assert beyond.error == "States.ExceedToleratedFailureThreshold"


# -- ResultWriter --------------------------------------------------------------------------------


def test_result_writer_exports_to_s3(run: Run, store: LocalStore) -> None:
    # WRITER (Resource s3:putObject + Parameters: the Map's output is {"MapRunArn",
    # "ResultWriterDetails": {"Bucket", "Key"}}, Key being <Prefix>/<map run id>/manifest.json;
    # the manifest lists SUCCEEDED_n.json files whose records (Transformation NONE) hold each
    # execution's Input and Output as JSON text).
    writer = {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "out", "Prefix": "runs"},
    }
    out = ok(run(dmap(ResultWriter=writer, Label="L"), [{"a": 1}], state_machine_name="sm"))
    run_id = out["MapRunArn"].rsplit(":", 1)[-1]
    assert out["MapRunArn"].startswith("arn:aws:states:us-east-1:123456789012:mapRun:sm/L:")
    assert out["ResultWriterDetails"] == {"Bucket": "out", "Key": f"runs/{run_id}/manifest.json"}
    manifest = store.get_json(f"s3://out/runs/{run_id}/manifest.json")
    assert manifest["DestinationBucket"] == "out"
    assert manifest["MapRunArn"] == out["MapRunArn"]
    assert manifest["ResultFiles"]["FAILED"] == manifest["ResultFiles"]["PENDING"] == []
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    assert succeeded["Key"] == f"runs/{run_id}/SUCCEEDED_0.json"
    (record,) = store.get_json(f"s3://out/{succeeded['Key']}")
    assert record["Status"] == "SUCCEEDED"
    assert json.loads(record["Input"]) == json.loads(record["Output"]) == {"a": 1}
    assert record["ExecutionArn"].startswith(
        "arn:aws:states:us-east-1:123456789012:execution:sm/L:"
    )


def test_result_selector_and_result_path_apply_to_the_writer_details(run: Run) -> None:
    # WRITER (the Map's result is the ResultWriterDetails object) with the Map state's
    # ResultSelector and ResultPath (DMAP: a Distributed Map has the Map state's fields).
    writer = {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "out"}}
    definition = dmap(
        ItemsPath="$.xs",
        ResultWriter=writer,
        ResultSelector={"manifest.$": "$.ResultWriterDetails.Key"},
        ResultPath="$.written",
    )
    out = ok(run(definition, {"xs": [1], "keep": True}))
    assert out["keep"] is True
    assert out["written"]["manifest"].endswith("/manifest.json")


def test_writer_config_flatten_preview(run: Run, store: LocalStore) -> None:
    # WRITER (WriterConfig alone previews the formatted output without writing to S3; FLATTEN
    # splices the children's array outputs).
    pair = {"Pair": {"Type": "Pass", "Parameters": {"x.$": "States.Array($, $)"}, "End": True}}
    states = {**pair, "Pair": {**pair["Pair"], "OutputPath": "$.x"}}
    writer = {"WriterConfig": {"Transformation": "FLATTEN", "OutputType": "JSON"}}
    out = ok(run(dmap(ItemProcessor=processor(states), ResultWriter=writer), [1, 2]))
    assert out == [1, 1, 2, 2]
    assert not store.s3_root.exists()


# -- JSONata -------------------------------------------------------------------------------------


def test_jsonata_distributed_map(run: Run, store: LocalStore) -> None:
    # JSONATA (Arguments, Items, ItemSelector with $states.context.Map.Item, {% %} in
    # ItemBatcher and ToleratedFailureCount) with DMAP and READER.
    store.put_json("s3://data/in.json", [10, 20, 30])
    state = {
        "Type": "Map",
        "QueryLanguage": "JSONata",
        "ItemReader": {
            "Resource": GET_OBJECT,
            "ReaderConfig": {"InputType": "JSON", "MaxItems": "{% $states.input.n %}"},
            "Arguments": {"Bucket": "data", "Key": "{% $states.input.key %}"},
        },
        "ItemSelector": {
            "i": "{% $states.context.Map.Item.Index %}",
            "v": "{% $states.context.Map.Item.Value * 2 %}",
        },
        "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"tag": "{% $states.input.tag %}"}},
        "ToleratedFailureCount": "{% 0 %}",
        "ItemProcessor": processor(),
        "End": True,
    }
    out = ok(run(machine({"M": state}), {"key": "in.json", "n": 3, "tag": "t"}))
    assert out == [
        {"Items": [{"i": 0, "v": 20}, {"i": 1, "v": 40}], "BatchInput": {"tag": "t"}},
        {"Items": [{"i": 2, "v": 60}], "BatchInput": {"tag": "t"}},
    ]


def test_no_local_store_fails_the_reader(make_engine: Callable[..., LocalEngine]) -> None:
    # READER: without S3 the reader cannot read; the engine says how to give it a store.
    engine = make_engine()
    reader = {"Resource": GET_OBJECT, "Parameters": {"Bucket": "b", "Key": "k"}}
    execution = engine.start_execution(dmap(ItemReader=reader)).wait(RUN_TIMEOUT)
    assert execution.error == "States.ItemReaderFailed"
    assert "LocalS3" in (execution.cause or "")


def test_exec_reads_and_writes_the_local_store(main: Any, tmp_path: Path, capsys: Any) -> None:  # noqa: F811
    # READER and WRITER through `python -m workflow exec`: the runtime's engine reads and
    # writes `<local.root>/s3/<bucket>/<key>`, the store every local service uses.
    LocalStore(tmp_path / "root").put_bytes("s3://data/rows.csv", b"id\n1\n2\n")
    definition = dmap(
        ItemReader={
            "Resource": GET_OBJECT,
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            "Parameters": {"Bucket": "data", "Key": "rows.csv"},
        },
        ResultWriter={
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "data", "Prefix": "results"},
        },
    )
    path = tmp_path / "dmap.json"
    path.write_text(json.dumps(definition))
    assert main("exec", str(path)) == 0
    output = json.loads(capsys.readouterr().out)
    key = output["ResultWriterDetails"]["Key"]
    manifest = json.loads((tmp_path / "root" / "s3" / "data" / key).read_text())
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    records = json.loads((tmp_path / "root" / "s3" / "data" / succeeded["Key"]).read_text())
    assert [json.loads(r["Output"]) for r in records] == [{"id": "1"}, {"id": "2"}]


# -- validation ----------------------------------------------------------------------------------


def full_distributed_map() -> dict[str, Any]:
    return dmap(
        ItemReader={
            "Resource": GET_OBJECT,
            "ReaderConfig": {
                "InputType": "CSV",
                "CSVHeaderLocation": "GIVEN",
                "CSVHeaders": ["a"],
                "CSVDelimiter": "PIPE",
                "MaxItemsPath": "$.n",
            },
            "Parameters": {"Bucket": "b", "Key": "k"},
        },
        ItemBatcher={"MaxItemsPerBatch": 10, "MaxInputBytesPerBatch": 1024, "BatchInput": {}},
        ResultWriter={
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "b", "Prefix": "p"},
            "WriterConfig": {"Transformation": "COMPACT", "OutputType": "JSONL"},
        },
        ToleratedFailurePercentage=5,
        ToleratedFailureCountPath="$.tolerated",
        Label="Scan",
        MaxConcurrency=100,
    )


def test_validate_accepts_every_distributed_field(engine: LocalEngine) -> None:
    # DMAP ("Distributed Map state fields"), READER, BATCHER, WRITER: all valid together.
    from workflow.validate import validate_definition

    assert validate_definition(full_distributed_map()) == []
    engine.check_definition(full_distributed_map())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ItemProcessor": {**processor(), "ProcessorConfig": {"Mode": "INLINE"}}}, "ItemReader"),
        ({"ItemProcessor": {**processor(), "ProcessorConfig": {"Mode": "DISTRIBUTED"}}}, "Type"),
        ({"ItemReader": {"Resource": GET_OBJECT, "ReaderConfig": {"InputType": "XML"}}}, "XML"),
        ({"ItemBatcher": {"BatchInput": {}}}, "MaxItemsPerBatch"),
        ({"ToleratedFailurePercentage": 150}, "150"),
        ({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject"}}, "go together"),
    ],
)
def test_invalid_distributed_fields_are_refused(change: dict[str, Any], field: str) -> None:
    # DMAP (ItemReader, ItemBatcher, ResultWriter, ToleratedFailure*, Label exist only in
    # DISTRIBUTED mode, which needs ExecutionType), READER (InputType values), BATCHER, WRITER
    # (Resource and Parameters go together), THRESHOLD (a percentage from 0 to 100).
    from workflow.validate import validate_definition

    definition = full_distributed_map()
    definition["States"]["M"].update(change)
    problems = validate_definition(definition, lint=False)
    assert any(field in problem for problem in problems), problems
