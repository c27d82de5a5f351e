"""Helpers the notebooks in ``notebooks/`` call; no logic lives only in a notebook.

The notebooks import this package as ``nb`` and only orchestrate and show::

    from workflow import notebook as nb
    session = nb.start(mode, config_file=config_file, root=root, overrides=overrides)

- :mod:`workflow.notebook.session`: the configuration, mode and local store of a notebook.
- :mod:`workflow.notebook.data`: COCO splits (local folder, local store or S3), class counts.
- :mod:`workflow.notebook.authoring`: editing, checking and drawing the SDK workflow.
- :mod:`workflow.notebook.local_api`: the local runtime behind a Step Functions API.
- :mod:`workflow.notebook.deploy`: the aws mode (deploy, execution input).
- :mod:`workflow.notebook.progress`: following an execution, progress and history tables.
- :mod:`workflow.notebook.records`: the run record notebook 03 reads.
- :mod:`workflow.notebook.evaluate`: invoking the endpoint, COCO mAP, latency figures.
- :mod:`workflow.notebook.capture`: the endpoint's data capture files, read back.
- :mod:`workflow.notebook.viz`: the matplotlib figures (PNG outputs in executed notebooks).
- :mod:`workflow.notebook.tables`: small HTML/Markdown tables without pandas.
- :mod:`workflow.notebook.sources` and :mod:`workflow.notebook.execute`: running the notebooks
  with papermill (``python -m workflow notebooks`` is a thin caller).

Heavy libraries (matplotlib, torch, boto3, stepfunctions) are imported inside the functions.
"""

from __future__ import annotations

from workflow.notebook.authoring import (
    check,
    compare_workflows,
    document_of,
    graph_png,
    insert_step_after,
    state_names,
    with_client,
)
from workflow.notebook.capture import Capture, capture_destination, capture_table, read_captures
from workflow.notebook.data import (
    CocoSplit,
    class_counts,
    dataset_splits,
    load_split,
    split_summary,
)
from workflow.notebook.deploy import aws_execution_input, deploy
from workflow.notebook.evaluate import (
    EndpointInvoker,
    LocalEndpoint,
    Prediction,
    coco_detections,
    coco_metrics,
    endpoint_invoker,
    latency_summary,
    local_endpoint,
    metrics_table,
    predict_split,
    stop_local_endpoint,
    time_requests,
)
from workflow.notebook.local_api import LocalStepFunctions
from workflow.notebook.progress import (
    follow,
    history_rows,
    require_success,
    run_summary,
    state_rows,
    state_visits,
)
from workflow.notebook.records import last_run, model_artifact, remember_run
from workflow.notebook.session import NotebookError, Session, setup_logging, start
from workflow.notebook.tables import Table

__all__ = [
    "Capture",
    "CocoSplit",
    "EndpointInvoker",
    "LocalEndpoint",
    "LocalStepFunctions",
    "NotebookError",
    "Prediction",
    "Session",
    "Table",
    "aws_execution_input",
    "capture_destination",
    "capture_table",
    "check",
    "class_counts",
    "coco_detections",
    "coco_metrics",
    "compare_workflows",
    "dataset_splits",
    "deploy",
    "document_of",
    "endpoint_invoker",
    "follow",
    "graph_png",
    "history_rows",
    "insert_step_after",
    "last_run",
    "latency_summary",
    "load_split",
    "local_endpoint",
    "metrics_table",
    "model_artifact",
    "predict_split",
    "read_captures",
    "remember_run",
    "require_success",
    "run_summary",
    "setup_logging",
    "split_summary",
    "start",
    "state_names",
    "state_rows",
    "state_visits",
    "stop_local_endpoint",
    "time_requests",
    "with_client",
]
