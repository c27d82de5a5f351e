"""DISTRIBUTED Map states at parse: what moto 5.2.5's grammar cannot read, set aside.

moto's grammar has no `ItemBatcher`, `CSVDelimiter`, `WriterConfig`, `ExecutionType: EXPRESS`
or integer `ToleratedFailurePercentage`, and its `InputType` knows only CSV and JSON
(`...asl.parse.preprocessor`, `...asl.antlr.runtime.ASLParser`). `parse_with_distributed_maps`
gives moto each DISTRIBUTED Map as an INLINE Map without the distributed-only fields, and
attaches to moto's `StateMap` a `DistributedSpec` holding them; their dynamic values (`*Path`,
`{% %}`, the ItemReader/ResultWriter `Parameters`/`Arguments`, `BatchInput`) become one payload
template moto parses as a Pass state's `Parameters` (JSONPath) or `Output` (JSONata), so paths,
intrinsic functions, JSONata and variables evaluate there as everywhere else.
`workflow.local.interpreter.distributed_map` runs them.
"""

# mypy: disable-error-code="no-untyped-call,attr-defined"

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Final

from workflow.asl_map import DISTRIBUTED_ONLY
from workflow.local import map_run
from workflow.local.interpreter.moto_api import AmazonStateLanguageParser, state_map

SPEC_ATTRIBUTE: Final = "_local_distributed_spec"
_BATCH_FIELDS: Final = ("MaxItemsPerBatch", "MaxInputBytesPerBatch")
_TOLERANCE_FIELDS: Final = ("ToleratedFailureCount", "ToleratedFailurePercentage")


@dataclass(frozen=True)
class DistributedSpec:
    """What moto does not parse of one DISTRIBUTED Map state."""

    processor: str  # the child state machine (JSON text)
    execution_type: str
    label: str | None
    reader_action: str | None  # getObject / listObjectsV2, or None without ItemReader
    reader: map_run.ReaderSpec
    writer_resource: bool
    transformation: str | None
    output_type: str
    batching: bool
    template: Any  # moto's Parargs (JSONPath) or Output (JSONata) component, or None


# -- parse --------------------------------------------------------------------------------------
def rewrite(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Return the document moto parses and the original DISTRIBUTED Map states by name."""
    moto_document = copy.deepcopy(document)
    originals: dict[str, dict[str, Any]] = {}
    _rewrite_states(moto_document, str(document.get("QueryLanguage", "JSONPath")), originals)
    return moto_document, originals


def _rewrite_states(machine: Any, language: str, originals: dict[str, dict[str, Any]]) -> None:
    states = machine.get("States") if isinstance(machine, dict) else None
    if not isinstance(states, dict):
        return
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        own = str(state.get("QueryLanguage", language))
        for branch in state.get("Branches") or []:
            _rewrite_states(branch, own, originals)
        processor = state.get("ItemProcessor")
        if state.get("Type") != "Map" or not isinstance(processor, dict):
            continue
        config = processor.get("ProcessorConfig")
        if isinstance(config, dict) and config.get("Mode") == "DISTRIBUTED":
            originals[name] = {"state": copy.deepcopy(state), "language": own}
            for key in DISTRIBUTED_ONLY:
                state.pop(key, None)
            processor["ProcessorConfig"] = {"Mode": "INLINE"}
        _rewrite_states(processor, str(processor.get("QueryLanguage", own)), originals)


def build_spec(state: dict[str, Any], language: str) -> DistributedSpec:
    """Return the spec of one DISTRIBUTED Map state (its template parsed by moto)."""
    processor = state["ItemProcessor"]
    child = {k: v for k, v in processor.items() if k != "ProcessorConfig"}
    child.setdefault("QueryLanguage", language)
    reader = state.get("ItemReader") or {}
    reader_config = reader.get("ReaderConfig") or {}
    writer = state.get("ResultWriter") or {}
    writer_config = writer.get("WriterConfig") or {}
    batcher = state.get("ItemBatcher")
    resource = str(reader.get("Resource", ""))
    template = _template(state, reader, reader_config, writer, batcher or {}, language)
    return DistributedSpec(
        processor=json.dumps(child),
        execution_type=str(processor["ProcessorConfig"].get("ExecutionType", "STANDARD")),
        label=state.get("Label"),
        reader_action=resource.rsplit(":", 1)[-1] if reader else None,
        reader=map_run.ReaderSpec(
            input_type=reader_config.get("InputType"),
            csv_header_location=str(reader_config.get("CSVHeaderLocation", "FIRST_ROW")),
            csv_headers=tuple(reader_config.get("CSVHeaders") or ()),
            csv_delimiter=str(reader_config.get("CSVDelimiter", "COMMA")),
        ),
        writer_resource="Resource" in writer,
        transformation=writer_config.get("Transformation"),
        output_type=str(writer_config.get("OutputType", "JSON")),
        batching=batcher is not None,
        template=_parse_template(template, language),
    )


def _template(
    state: dict[str, Any],
    reader: dict[str, Any],
    reader_config: dict[str, Any],
    writer: dict[str, Any],
    batcher: dict[str, Any],
    language: str,
) -> dict[str, Any]:
    sources: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        (state, _TOLERANCE_FIELDS),
        (reader_config, ("MaxItems",)),
        (batcher, _BATCH_FIELDS),
    ]
    template: dict[str, Any] = {}
    for source, fields in sources:
        for name in fields:
            if name in source:
                template[name] = source[name]
            elif f"{name}Path" in source:
                template[f"{name}.$"] = source[f"{name}Path"]
    args = "Parameters" if language == "JSONPath" else "Arguments"
    for key, source in (("ReaderParameters", reader), ("WriterParameters", writer)):
        if args in source:
            template[key] = source[args]
    if "BatchInput" in batcher:
        template["BatchInput"] = batcher["BatchInput"]
    return template


def _parse_template(template: dict[str, Any], language: str) -> Any:
    if not template:
        return None
    field = "Parameters" if language == "JSONPath" else "Output"
    snippet = {
        "QueryLanguage": language,
        "StartAt": "T",
        "States": {"T": {"Type": "Pass", field: template, "End": True}},
    }
    program = AmazonStateLanguageParser.parse(json.dumps(snippet))[0]
    state = program.states.states["T"]
    # JSONata: the Output's template (Output itself stores its value as the state's result).
    return state.parameters if language == "JSONPath" else state.output.jsonata_template_value


def attach(program: Any, originals: dict[str, dict[str, Any]]) -> None:
    """Attach each spec to moto's StateMap of that name in `program`."""
    specs = {name: build_spec(o["state"], o["language"]) for name, o in originals.items()}
    pending = [program]
    seen: set[int] = set()
    while pending:
        component = pending.pop()
        if id(component) in seen:
            continue
        seen.add(id(component))
        if isinstance(component, state_map.StateMap) and component.name in specs:
            setattr(component, SPEC_ATTRIBUTE, specs[component.name])
        values = list(vars(component).values()) if hasattr(component, "__dict__") else []
        while values:
            value = values.pop()
            if isinstance(value, (list, tuple)):
                values.extend(value)
            elif isinstance(value, dict):
                values.extend(value.values())
            elif type(value).__module__.startswith("moto.stepfunctions.parser.asl.component"):
                pending.append(value)


def parse_with_distributed_maps(definition: str) -> Any:
    """Parse a definition whose DISTRIBUTED Maps moto's grammar cannot read as they are."""
    document = json.loads(definition)
    moto_document, originals = rewrite(document)
    program = AmazonStateLanguageParser.parse(json.dumps(moto_document))[0]
    if originals:
        attach(program, originals)
    return program
