"""The CLI: fast help, render to stdout, graphs, configuration errors as one line each."""

from __future__ import annotations

import json

import pytest

from workflow.cli import COMMAND_MODULES, build_cli, main
from workflow.definition import render_json
from workflow.graph import draw_graph, layout


def test_every_command_module_registers(capsys) -> None:
    commands = set(build_cli().commands)
    assert {"render", "validate", "deploy", "start", "approve", "reject", "redrive"} <= commands
    assert len(COMMAND_MODULES) == len(set(COMMAND_MODULES))


def test_no_command_prints_help(capsys) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_render_prints_exactly_the_deployed_string(make_config, capsys) -> None:
    assert main(["render"]) == 0
    out = capsys.readouterr().out
    assert out == render_json(make_config()) + "\n"
    json.loads(out)


def test_options_after_the_command_and_config_file(write_config, make_config, capsys) -> None:
    path = write_config({"gate": {"threshold": 0.7}})
    assert main(["render", "--config", str(path), "--set", "gate.metric=bbox_mAP"]) == 0
    state = json.loads(capsys.readouterr().out)["States"]["QualityGate"]
    # the threshold travels in the execution input; the file's value is the documented default
    assert state["Choices"][0]["And"][-1] == {
        "Variable": "$.Metrics.Payload.bbox_mAP",
        "NumericGreaterThanEqualsPath": "$.GateThreshold",
    }
    assert "gate.threshold = 0.7" in state["Comment"]


def test_configuration_errors_exit_2_one_line_each(write_config, capsys) -> None:
    path = write_config({"region": "moon", "gate": {"threshold": 9}})
    assert main(["--config", str(path), "render"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"error: {path}: region = 'moon' is not an AWS region (e.g. 'us-east-1')",
        f"error: {path}: gate.threshold = 9.0 is out of range (expected 0 to 1)",
    ]


def test_bad_set_syntax(make_config, capsys) -> None:
    assert main(["render", "--set", "gate.threshold"]) == 2
    assert "is not KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_render_graph(make_config, tmp_path, capsys, suffix) -> None:
    path = tmp_path / f"machine{suffix}"
    assert main(["render", "--graph", str(path)]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2000]
    assert main(["render", "--graph", str(path)]) == 1  # never overwrite
    assert "already exists" in capsys.readouterr().err
    assert main(["render", "--graph", str(path), "--force"]) == 0


def test_graph_suffix_and_layout(make_config, tmp_path) -> None:
    from workflow.definition import render_definition
    from workflow.errors import WorkflowError

    document = render_definition(make_config())
    with pytest.raises(WorkflowError, match=r"must end in \.png or \.svg"):
        draw_graph(document, tmp_path / "x.pdf")
    positions = layout(document)
    assert set(positions) == set(document["States"])
    assert positions["CheckImage"][1] > positions["Train"][1] > positions["Succeeded"][1]
    assert positions["TrainFailed"][1] == positions["Train"][1]  # level with its task
    assert positions["TrainFailed"][0] > positions["Train"][0]  # in the failure column
    assert positions["Failed"][1] < positions["NotifyFailure"][1]


def test_common_options_before_and_after_the_command_all_apply(make_config, capsys) -> None:
    argv = ["--set", "gate.metric=bbox_mAP", "render", "--set", "gate.threshold=0.3", "-q"]
    assert main(argv) == 0
    state = json.loads(capsys.readouterr().out)["States"]["QualityGate"]
    assert state["Choices"][0]["And"][-1]["Variable"] == "$.Metrics.Payload.bbox_mAP"
    assert "gate.threshold = 0.3" in state["Comment"]


def test_usage_errors_exit_2_without_traceback(capsys) -> None:
    assert main(["render", "--no-such-flag"]) == 2
    err = capsys.readouterr().err
    assert "No such option" in err and "Traceback" not in err
    assert main(["nosuch"]) == 2
    assert main(["--help"]) == 0
    assert "render" in capsys.readouterr().out
