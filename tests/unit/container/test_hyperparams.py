from __future__ import annotations

import pytest
from mask_r_cnn.errors import HyperparameterError
from mask_r_cnn.hyperparams import (
    BACKBONES,
    TrainConfig,
    describe_hyperparameters,
    parse_hyperparameters,
)


def test_empty_mapping_gives_the_documented_defaults() -> None:
    config = parse_hyperparameters({})
    assert config == TrainConfig()
    assert config.backbone == "resnet50_fpn"
    assert config.max_steps is None


def test_string_values_are_parsed_with_their_types() -> None:
    config = parse_hyperparameters(
        {
            "epochs": "3",
            "batch_size": "4",
            "lr": "0.02",
            "momentum": "0.8",
            "weight_decay": "0.0005",
            "backbone": "mobilenet_v3_large_fpn",
            "min_size": "128",
            "max_size": "160",
            "trainable_backbone_layers": "6",
            "num_workers": "0",
            "seed": "7",
            "max_steps": "5",
            "amp": "true",
            "score_threshold": "0.7",
            "lr_steps": "2,3",
            "fast": "yes",
            "checkpoint_steps": "10",
        }
    )
    assert (config.epochs, config.batch_size, config.lr) == (3, 4, 0.02)
    assert config.backbone == "mobilenet_v3_large_fpn"
    assert config.trainable_backbone_layers == 6
    assert config.max_steps == 5
    assert config.amp is True and config.fast is True
    assert config.lr_steps == (2, 3)
    assert config.score_threshold == 0.7


def test_json_quoted_values_from_framework_estimators_are_accepted() -> None:
    config = parse_hyperparameters({"backbone": '"resnet18_fpn"', "epochs": 2, "amp": False})
    assert config.backbone == "resnet18_fpn"
    assert config.epochs == 2
    assert config.amp is False


def test_sagemaker_added_keys_are_ignored() -> None:
    config = parse_hyperparameters(
        {"sagemaker_region": '"us-east-1"', "_tuning_objective_metric": "segm_mAP"}
    )
    assert config == TrainConfig()


def test_unknown_key_names_the_key_and_lists_the_known_ones() -> None:
    with pytest.raises(HyperparameterError, match=r"unknown hyperparameter 'epoch' = '3'.*epochs"):
        parse_hyperparameters({"epoch": "3"})


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("epochs", "ten", "an integer >= 1"),
        ("epochs", "0", "an integer >= 1"),
        ("batch_size", "1.5", "an integer >= 1"),
        ("lr", "0", "a number > 0"),
        ("lr", "nan", "a number > 0"),
        ("momentum", "1.5", "<= 1"),
        ("backbone", "vgg16", "one of resnet50_fpn"),
        ("amp", "maybe", "true or false"),
        ("score_threshold", "2", "<= 1"),
        ("lr_steps", "3,2", "increasing epoch numbers"),
        ("trainable_backbone_layers", "7", "from 0 to 6"),
        ("min_size", "8", "an integer >= 32"),
        ("optimizer", "adam", "one of sgd, adamw"),
        ("lr_schedule", "linear", "one of step, cosine, wsd"),
        ("lr_decay_fraction", "0", "a number > 0"),
        ("adam_beta2", "1.5", "<= 1"),
        ("rpn_train_proposals", "-3", "an integer from 0 to 10000"),
        ("norm", "layer_norm", "one of auto, batch_norm, group_norm, frozen_batch_norm"),
        ("anchor_sizes", "16,8,32,64,128", "increasing sizes in pixels"),
        ("anchor_sizes", "8,16,big", "increasing sizes in pixels"),
        ("anchor_sizes", "8,16,32", "5 sizes, one per FPN level of resnet50_fpn"),
        ("fpn_channels", "4", "an integer from 8 to 1024"),
        ("backbone_width", "4", "an integer from 8 to 256"),
        ("roi_sampling_ratio", "0", "an integer from 1 to 8"),
        ("box_samples_per_image", "-1", "an integer from 0 to 4096"),
        ("one_label_per_object", "sometimes", "true or false"),
        ("max_seconds", "-5", "a number > 0"),
    ],
)
def test_bad_values_name_key_value_and_expectation(key: str, value: str, expected: str) -> None:
    with pytest.raises(HyperparameterError) as info:
        parse_hyperparameters({key: value})
    message = str(info.value)
    assert f"hyperparameter {key} = {value!r}" in message
    assert expected in message
    assert "\n" not in message


def test_resnet_backbones_allow_at_most_5_trainable_layers() -> None:
    with pytest.raises(HyperparameterError, match="from 0 to 5 for backbone resnet18_fpn"):
        parse_hyperparameters({"backbone": "resnet18_fpn", "trainable_backbone_layers": "6"})


def test_max_size_below_min_size_is_rejected() -> None:
    with pytest.raises(HyperparameterError, match="max_size"):
        parse_hyperparameters({"min_size": "512", "max_size": "256"})


def test_max_steps_zero_means_no_cap() -> None:
    assert parse_hyperparameters({"max_steps": "0"}).max_steps is None


def test_as_strings_round_trips() -> None:
    config = parse_hyperparameters({"lr_steps": "4,8", "max_steps": "9", "amp": "1"})
    assert parse_hyperparameters(config.as_strings()) == config


def test_every_hyperparameter_is_documented() -> None:
    rows = describe_hyperparameters()
    assert {name for name, _, _ in rows} >= {"epochs", "backbone", "max_steps", "score_threshold"}
    assert all(doc for _, _, doc in rows)
    assert set(BACKBONES) == {"resnet50_fpn", "resnet18_fpn", "mobilenet_v3_large_fpn"}


def test_cpu_fit_model_and_short_run_recipe_are_parsed() -> None:
    config = parse_hyperparameters(
        {
            "backbone": "resnet18_fpn",
            "norm": "group_norm",
            "fpn_channels": "64",
            "box_head_channels": "256",
            "mask_head_channels": "64",
            "mask_head_layers": "2",
            "anchor_sizes": "8,16,32,64,128",
            "optimizer": "adamw",
            "lr_schedule": "cosine",
            "max_seconds": "90",
        }
    )
    assert config.anchor_sizes == (8, 16, 32, 64, 128)
    assert (config.optimizer, config.lr_schedule, config.max_seconds) == ("adamw", "cosine", 90.0)
    assert (config.norm, config.fpn_channels, config.mask_head_layers) == ("group_norm", 64, 2)
    assert parse_hyperparameters(config.as_strings()) == config
    assert parse_hyperparameters({"anchor_sizes": "auto"}).anchor_sizes == "auto"
    assert parse_hyperparameters({"anchor_sizes": "default"}).anchor_sizes == ()
    assert parse_hyperparameters({"max_seconds": "0"}).max_seconds is None
    # MobileNet gives every size to each of its 3 levels, so any count is fine there.
    mobile = {"backbone": "mobilenet_v3_large_fpn", "anchor_sizes": "16,32,64"}
    assert parse_hyperparameters(mobile).anchor_sizes == (16, 32, 64)


def test_backbone_width_applies_to_resnet_backbones_only() -> None:
    assert parse_hyperparameters({"backbone_width": "32"}).backbone_width == 32
    with pytest.raises(HyperparameterError, match="ResNet backbones only"):
        parse_hyperparameters({"backbone": "mobilenet_v3_large_fpn", "backbone_width": "32"})
