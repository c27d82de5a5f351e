"""What AWS refuses (`InvalidDefinition`) in a Map state's processing mode and Distributed fields.

`check_map_mode(state, path, problems, language)` adds one sentence per problem: the
`ProcessorConfig` values, the fields only a DISTRIBUTED Map has (`ItemReader`, `ItemBatcher`,
`ResultWriter`, `ToleratedFailure*`, `Label`) when the Map is INLINE, and the shape of those
fields (https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html,
input-output-itemreader.html, input-output-itembatcher.html, input-output-resultwriter.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from workflow.asl_rules import JSONPATH, hint, is_jsonata, non_negative_int

DISTRIBUTED_ONLY: Final = (
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "Label",
)
_READER_ACTIONS: Final = ("arn:aws:states:::s3:getObject", "arn:aws:states:::s3:listObjectsV2")
_READER_CONFIG: Final = {
    "InputType": ("CSV", "JSON", "JSONL", "MANIFEST", "PARQUET"),
    "CSVHeaderLocation": ("FIRST_ROW", "GIVEN"),
    "CSVDelimiter": ("COMMA", "PIPE", "SEMICOLON", "SPACE", "TAB"),
}
_WRITER_CONFIG: Final = {
    "Transformation": ("NONE", "COMPACT", "FLATTEN"),
    "OutputType": ("JSON", "JSONL"),
}
_BATCHER_FIELDS: Final = (
    "MaxItemsPerBatch",
    "MaxItemsPerBatchPath",
    "MaxInputBytesPerBatch",
    "MaxInputBytesPerBatchPath",
    "BatchInput",
)
# Every field name this module checks: the statelint port predates some of them and refuses
# them ('Field "Label" not allowed'); `workflow.validate` drops those lines.
FIELD_NAMES: Final = frozenset(
    {
        *DISTRIBUTED_ONLY,
        *_READER_CONFIG,
        *_WRITER_CONFIG,
        *_BATCHER_FIELDS,
        "CSVHeaders",
        "MaxItems",
        "MaxItemsPath",
        "ReaderConfig",
        "WriterConfig",
        "ExecutionType",
    }
)
MAX_LABEL_LENGTH: Final = 40
MAX_BATCH_BYTES: Final = 256 * 1024


def check_map_mode(state: Mapping[str, Any], path: str, problems: list[str], language: str) -> None:
    """Check a Map state's `ProcessorConfig` and its Distributed-only fields."""
    processor = state.get("ItemProcessor")
    config = processor.get("ProcessorConfig") if isinstance(processor, Mapping) else None
    mode = "INLINE"
    if isinstance(config, Mapping):
        mode = str(config.get("Mode", "INLINE"))
        where = f"{path}.ItemProcessor.ProcessorConfig"
        if mode not in ("INLINE", "DISTRIBUTED"):
            problems.append(f"{where}.Mode: {mode!r} is not INLINE or DISTRIBUTED")
        execution_type = config.get("ExecutionType")
        if mode == "DISTRIBUTED" and execution_type not in ("STANDARD", "EXPRESS"):
            problems.append(
                f"{where}.ExecutionType: {execution_type!r} must be STANDARD or EXPRESS (a "
                "DISTRIBUTED Map needs it)"
            )
    if mode != "DISTRIBUTED":
        for key in DISTRIBUTED_ONLY:
            if key in state:
                problems.append(
                    f"{path}.{key}: field {key!r} belongs to a Map in DISTRIBUTED mode; set "
                    "ItemProcessor.ProcessorConfig.Mode to DISTRIBUTED or remove it"
                )
        return
    _check_pairs(state, path, problems, ("ToleratedFailureCount", "ToleratedFailurePercentage"))
    percentage = state.get("ToleratedFailurePercentage")
    if percentage is not None and not is_jsonata(percentage) and not _in_range(percentage, 100):
        problems.append(
            f"{path}.ToleratedFailurePercentage: {percentage!r} must be a number from 0 to 100"
        )
    count = state.get("ToleratedFailureCount")
    if count is not None and not is_jsonata(count) and not non_negative_int(count):
        problems.append(f"{path}.ToleratedFailureCount: {count!r} must be an integer >= 0")
    label = state.get("Label")
    if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL_LENGTH):
        problems.append(f"{path}.Label: {label!r} must be a string of at most 40 characters")
    _check_reader(state.get("ItemReader"), f"{path}.ItemReader", problems, language)
    _check_batcher(state.get("ItemBatcher"), f"{path}.ItemBatcher", problems)
    _check_writer(state.get("ResultWriter"), f"{path}.ResultWriter", problems, language)


def _in_range(value: Any, upper: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= upper


def _check_pairs(
    fields: Mapping[str, Any], path: str, problems: list[str], names: tuple[str, ...]
) -> None:
    for name in names:
        if name in fields and f"{name}Path" in fields:
            problems.append(f"{path}: give either {name} or {name}Path, not both")


def _check_keys(
    value: Mapping[str, Any], path: str, problems: list[str], allowed: set[str]
) -> None:
    for key in value:
        if key not in allowed:
            problems.append(f"{path}.{key}: field {key!r} does not belong here{hint(key, allowed)}")


def _arguments_field(language: str) -> str:
    return "Parameters" if language == JSONPATH else "Arguments"


def _check_reader(reader: Any, path: str, problems: list[str], language: str) -> None:
    if reader is None:
        return
    if not isinstance(reader, Mapping):
        problems.append(f"{path}: must be an object with Resource and {_arguments_field(language)}")
        return
    _check_keys(reader, path, problems, {"Resource", _arguments_field(language), "ReaderConfig"})
    if reader.get("Resource") not in _READER_ACTIONS:
        problems.append(
            f"{path}.Resource: {reader.get('Resource')!r} must be one of "
            f"{', '.join(_READER_ACTIONS)}"
        )
    config = reader.get("ReaderConfig")
    if config is None:
        return
    if not isinstance(config, Mapping):
        problems.append(f"{path}.ReaderConfig: must be an object")
        return
    _check_keys(
        config,
        f"{path}.ReaderConfig",
        problems,
        {*_READER_CONFIG, "CSVHeaders", "MaxItems", "MaxItemsPath"},
    )
    _check_pairs(config, f"{path}.ReaderConfig", problems, ("MaxItems",))
    for key, choices in _READER_CONFIG.items():
        if key in config and config[key] not in choices:
            problems.append(
                f"{path}.ReaderConfig.{key}: {config[key]!r} is not one of {', '.join(choices)}"
            )
    if config.get("CSVHeaderLocation") == "GIVEN" and not config.get("CSVHeaders"):
        problems.append(f"{path}.ReaderConfig.CSVHeaders: needed when CSVHeaderLocation is GIVEN")


def _check_batcher(batcher: Any, path: str, problems: list[str]) -> None:
    if batcher is None:
        return
    if not isinstance(batcher, Mapping):
        problems.append(f"{path}: must be an object with MaxItemsPerBatch or MaxInputBytesPerBatch")
        return
    _check_keys(batcher, path, problems, set(_BATCHER_FIELDS))
    _check_pairs(batcher, path, problems, ("MaxItemsPerBatch", "MaxInputBytesPerBatch"))
    if not any(key in batcher for key in _BATCHER_FIELDS[:4]):
        problems.append(
            f"{path}: give MaxItemsPerBatch or MaxInputBytesPerBatch (or their *Path forms)"
        )
    size = batcher.get("MaxInputBytesPerBatch")
    if size is not None and not is_jsonata(size) and not _in_range(size, MAX_BATCH_BYTES):
        problems.append(f"{path}.MaxInputBytesPerBatch: {size!r} must be at most 262144 bytes")


def _check_writer(writer: Any, path: str, problems: list[str], language: str) -> None:
    if writer is None:
        return
    arguments = _arguments_field(language)
    if not isinstance(writer, Mapping) or not writer:
        problems.append(f"{path}: give WriterConfig, or Resource and {arguments}, or all three")
        return
    _check_keys(writer, path, problems, {"Resource", arguments, "WriterConfig"})
    if ("Resource" in writer) != (arguments in writer):
        problems.append(f"{path}: Resource and {arguments} go together")
    if "Resource" in writer and writer["Resource"] != "arn:aws:states:::s3:putObject":
        problems.append(
            f"{path}.Resource: {writer['Resource']!r} must be arn:aws:states:::s3:putObject"
        )
    config = writer.get("WriterConfig")
    if isinstance(config, Mapping):
        _check_keys(config, f"{path}.WriterConfig", problems, set(_WRITER_CONFIG))
        for key, choices in _WRITER_CONFIG.items():
            if key in config and config[key] not in choices:
                problems.append(
                    f"{path}.WriterConfig.{key}: {config[key]!r} is not one of {', '.join(choices)}"
                )
