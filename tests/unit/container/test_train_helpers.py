from __future__ import annotations

from pathlib import Path

import pytest
from mask_r_cnn.data import load_channel
from mask_r_cnn.errors import DataError
from mask_r_cnn.hyperparams import parse_hyperparameters
from mask_r_cnn.train import build_spec, failure_sentence, write_failure


@pytest.mark.parametrize(
    ("backbone", "everything"),
    [("resnet50_fpn", 5), ("resnet18_fpn", 5), ("mobilenet_v3_large_fpn", 6)],
)
def test_spec_from_hyperparameters_and_categories(
    synthetic_root: Path, backbone: str, everything: int
) -> None:
    index = load_channel(synthetic_root / "train", "training")
    config = parse_hyperparameters(
        {"backbone": backbone, "trainable_backbone_layers": "1", "fast": "true"}
    )
    scratch = build_spec(config, index, pretrained=False)
    assert scratch.num_classes == 4  # 3 categories + background
    assert scratch.trainable_backbone_layers == everything  # random stages are never frozen
    assert scratch.norm_layer == "batch_norm" and scratch.fast
    tuned = build_spec(config, index, pretrained=True)
    assert tuned.trainable_backbone_layers == 1
    assert tuned.norm_layer == "frozen_batch_norm"


def test_failure_sentence_unwraps_dataloader_worker_errors() -> None:
    wrapped = DataError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1\nmask_r_cnn.errors.DataError: image a.jpg cannot be decoded (truncated); fix it.'
    )
    assert failure_sentence(wrapped) == "image a.jpg cannot be decoded (truncated); fix it."
    assert failure_sentence(ValueError("two\n  lines")) == "two lines"
    assert failure_sentence(KeyError()) == "KeyError"


def test_failure_file_has_the_sentence_first(tmp_path: Path) -> None:
    path = tmp_path / "output" / "failure"
    write_failure(path, "it broke; fix it.", "Traceback: ...")
    assert path.read_text().splitlines() == ["it broke; fix it.", "", "Traceback: ..."]


def test_pipe_mode_channels_are_refused(tmp_path: Path) -> None:
    from mask_r_cnn.env import SageMakerEnv
    from mask_r_cnn.errors import UserInputError
    from mask_r_cnn.train import check_input_modes

    ok = SageMakerEnv(
        base_dir=tmp_path, input_data_config={"training": {"TrainingInputMode": "FastFile"}}
    )
    check_input_modes(ok)
    pipe = SageMakerEnv(
        base_dir=tmp_path, input_data_config={"validation": {"TrainingInputMode": "Pipe"}}
    )
    with pytest.raises(UserInputError, match="channel 'validation' uses TrainingInputMode 'Pipe'"):
        check_input_modes(pipe)
