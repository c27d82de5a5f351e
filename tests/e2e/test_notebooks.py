"""The notebooks, executed by ``python -m workflow notebooks`` as ``make notebooks`` does.

One run executes 01 -> 02 -> 03 in local mode with tiny settings given as `--set` (a few images,
one training step, no gate threshold; the notebooks' own defaults train the learning demo): 02
deploys the local endpoint, 03 evaluates it; the tests read the executed notebooks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.notebook]

NOTEBOOKS = ("01_data", "02_workflow", "03_evaluate")


TINY = {
    "local.dataset.train": "4",
    "local.dataset.validation": "2",
    "local.dataset.test": "3",
    "local.dataset.size": "64",
    "local.hyperparameters.max_steps": "1",
    "gate.threshold": "0",
    "local.gate_threshold": "0",  # one step learns nothing
    "endpoint.data_capture.sampling_percentage": "100",  # 03 reads every request back
}


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    settings = [item for key, value in TINY.items() for item in ("--set", f"{key}={value}")]
    return subprocess.run(
        [sys.executable, "-m", "workflow", *settings, "notebooks", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _outputs(notebook: Any) -> list[dict[str, Any]]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def _text(notebook: Any) -> str:
    parts = []
    for output in _outputs(notebook):
        parts.append(str(output.get("text", "")))
        parts.append(str(output.get("data", {}).get("text/markdown", "")))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("notebooks")
    work, out, store = base / "work", base / "out", base / "store"
    work.mkdir()
    result = _run(
        ["--output", str(out), "-p", "root", str(store), "-p", "latency_requests", "3",
         "-p", "samples", "2", "-p", "capture_requests", "3"],
        cwd=work,
        timeout=1500,
    )  # fmt: skip
    return {"result": result, "out": out, "store": store}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_all_notebooks_run_top_to_bottom_with_png_outputs(executed):
    result = executed["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout.split()
    assert printed == [str(executed["out"] / f"{name}.ipynb") for name in NOTEBOOKS]
    minimum_pngs = {"01_data": 4, "02_workflow": 2, "03_evaluate": 3}
    for name in NOTEBOOKS:
        notebook = nbformat.read(executed["out"] / f"{name}.ipynb", as_version=4)
        outputs = _outputs(notebook)
        assert not [o for o in outputs if o.output_type == "error"], name
        assert notebook.metadata.papermill.get("exception") in (None, False), name
        pngs = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(pngs) >= minimum_pngs[name], (name, len(pngs))
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.metadata.papermill.status == "completed", (name, cell.source[:80])


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_workflow_ran_through_the_sdk_and_03_scored_its_endpoint(executed):
    assert executed["result"].returncode == 0, executed["result"].stderr[-3000:]
    workflow_nb = nbformat.read(executed["out"] / "02_workflow.ipynb", as_version=4)
    text = _text(workflow_nb)
    assert "| RecordModel | added | Pass |" in text  # the step chained in by the notebook
    assert "| RequestApproval | added | Task |" in text  # an optional stage added to the core
    # Against the kit's own chain of the configuration, only the notebook's step differs.
    assert "| CreateModel | changed: Next | Task |" in text
    assert "SUCCEEDED: arn:aws:states:" in text
    assert "| Train | 1 |" in text and "ExecutionSucceeded" in text
    assert "| RecordModel | 1 |" in text  # the added step ran
    store = executed["store"]
    record = json.loads((store / "notebooks" / "last-run.json").read_text())
    run = json.loads(Path(record["record"]).read_text())
    assert run["status"] == "SUCCEEDED" and run["endpoint_name"] == "mask-r-cnn"
    evaluate_nb = nbformat.read(executed["out"] / "03_evaluate.ipynb", as_version=4)
    text = _text(evaluate_nb)
    assert "| segm |" in text and "| bbox |" in text
    assert "p95 (ms)" in text
    # 03 read back what the endpoint received: the data capture of its invoke_endpoint calls
    assert "captured invocations shown, from s3://" in text
    assert "| inference time | variant | event | request | response |" in text
    assert "| AllTraffic |" in text and "image/" in text
    # the command stopped the endpoint the notebooks left running
    endpoints = store / "sagemaker" / "endpoints"
    running = []
    for path in endpoints.glob("*.json") if endpoints.is_dir() else []:
        running.append(json.loads(path.read_text()).get("EndpointName"))
    assert running == []


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_03_alone_serves_the_recorded_model_when_the_endpoint_is_gone(executed, tmp_path):
    assert executed["result"].returncode == 0, executed["result"].stderr[-3000:]
    out = tmp_path / "again"
    result = _run(
        ["--output", str(out), "--only", "03_evaluate", "-p", "root", str(executed["store"]),
         "-p", "latency_requests", "2", "-p", "images", "1"],
        cwd=tmp_path,
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    text = _text(nbformat.read(out / "03_evaluate.ipynb", as_version=4))
    assert "| endpoint | model s3://" in text and "/output/model.tar.gz |" in text
    assert "stopped the model server this notebook started" in text
    serve = executed["store"] / "notebooks" / "serve"
    assert not serve.is_dir() or not any(serve.iterdir())  # the extracted model is removed


def test_a_failing_cell_fails_the_command_naming_notebook_cell_and_error(tmp_path):
    out = tmp_path / "out"
    result = _run(
        ["--output", str(out), "-p", "mode", "bogus", "-p", "root", str(tmp_path / "store")],
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    line = errors[0]
    assert "01_data.py:" in line and "cell " in line and "session = nb.start(" in line
    assert "NotebookError: mode = 'bogus' is not supported" in line
    assert "executed notebook: out/01_data.ipynb" in line  # relative to the working folder
    failed = nbformat.read(out / "01_data.ipynb", as_version=4)
    assert failed.metadata.papermill.exception is True
    assert not (out / "02_workflow.ipynb").exists()  # the run stopped at the first failure
