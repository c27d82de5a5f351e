"""The notebooks command's reading of notebook sources (jupytext runs pandoc to list formats)."""

from __future__ import annotations

import pytest

from workflow.checkout import notebooks_dir
from workflow.notebook import execute, sources

pytestmark = pytest.mark.integration

REPO_NOTEBOOKS = notebooks_dir()


def test_every_repository_notebook_declares_the_common_parameters():
    paths = sources.find_notebooks(REPO_NOTEBOOKS, [])
    assert [p.name for p in paths] == ["01_data.py", "02_workflow.py", "03_evaluate.py"]
    for path in paths:
        notebook = sources.read_notebook(path)
        assert {"mode", "config_file", "root", "overrides"} <= set(notebook.parameters), path
        assert notebook.parameters["mode"] == '"local"'
        assert notebook.node.metadata["kernelspec"]["name"] == "python3"


def test_a_notebook_without_parameters_cell_is_named(tmp_path):
    path = tmp_path / "01_x.py"
    path.write_text("# %%\nx = 1\n")
    with pytest.raises(sources.NotebookRunError, match="has no cell tagged 'parameters'"):
        sources.read_notebook(path)


def test_set_overrides_extend_the_notebook_default():
    notebook = sources.read_notebook(REPO_NOTEBOOKS / "02_workflow.py")
    values = sources.notebook_parameters(
        notebook, {"mode": "local", "data": "x"}, {"gate.threshold": 0.3}
    )
    assert "data" not in values  # 02 does not declare it
    assert values["overrides"]["gate.threshold"] == 0.3
    assert values["overrides"]["local.poll_seconds"] == 0  # the default kept
    given = sources.notebook_parameters(notebook, {"overrides": {"a": 1}}, {"b": 2})
    assert given["overrides"] == {"a": 1, "b": 2}


def test_failure_message_names_file_line_cell_and_error(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    path = tmp_path / "01_demo.py"
    path.write_text(
        '# %% tags=["parameters"]\nmode = "local"\n\n# %%\nimport math\n'
        "value = math.sqrt(-1)\nprint(value)\n"
    )
    notebook = sources.read_notebook(path)
    error = PapermillExecutionError(
        cell_index=2,
        exec_count=2,
        source="import math\nvalue = math.sqrt(-1)\nprint(value)",
        ename="ValueError",
        evalue="math domain error.",
        traceback=["\x1b[0;31mValueError\x1b[0m", "Cell \x1b[0;32mIn[2], line 2\x1b[0m", "..."],
    )
    message = execute.describe_failure(notebook, tmp_path / "out.ipynb", error)
    assert message.startswith(f"{path}:6: cell 2 (value = math.sqrt(-1)) raised ValueError: ")
    assert "math domain error; executed notebook: " in message
    assert "\n" not in message


def test_cli_refuses_unknown_parameters_and_taken_outputs(tmp_path, capsys):
    from workflow.cli import main

    code = main(["notebooks", "--output", str(tmp_path), "-p", "nosuch", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "error: command line: -p nosuch is not a parameter of 01_data.py" in err
    (tmp_path / "01_data.ipynb").write_text("{}")
    code = main(["notebooks", "--output", str(tmp_path), "--only", "01_data"])
    assert code == 2
    assert "01_data.ipynb exists already and is never overwritten" in capsys.readouterr().err
    assert (tmp_path / "01_data.ipynb").read_text() == "{}"
