"""The training configuration (`training.config`, `flags`, `presets`): every field a
flag with help, unset fields resolved to the defaults they stand for, what may change
on resume declared on the fields, and the presets' sizes."""

import argparse
import dataclasses

import pytest

from inna_optax.training import PRESETS, Config, ConfigError, preset
from inna_optax.training.config import resumable_fields
from inna_optax.training.flags import add_flags


def test_every_config_field_is_a_flag_with_help():

    parser = argparse.ArgumentParser()
    add_flags(parser)
    dests = {a.dest: a for a in parser._actions if a.dest != "help"}
    for f in dataclasses.fields(Config):
        assert f.name in dests and dests[f.name].help


def test_config_fields_left_unset_take_each_optimizers_default():
    assert Config(optimizer="inna").value("alpha") == 0.5
    assert Config(optimizer="innaprop").value("alpha") == 0.1
    assert Config(optimizer="innaprop").value("beta") == 0.9
    assert Config(optimizer="adamw").value("weight_decay") == 0.01
    assert Config(optimizer="innaprop", alpha=0.3).value("alpha") == 0.3
    assert Config(optimizer="adamw").schedule_kind == "constant"
    assert Config(optimizer="sgd").schedule_kind == "power"


def test_resolved_gives_what_an_unset_field_stands_for():
    given = Config(optimizer="innaprop", lr=1e-3, alpha=0.1, beta=0.9, schedule="constant")
    unset = Config(optimizer="innaprop")
    assert given != unset and given.resolved() == unset.resolved()
    resolved = Config(dataset="mnist").resolved()
    assert (resolved["lr"], resolved["schedule"], resolved["dropout"]) == (1.0, "power", 0.5)
    assert (resolved["alpha"], resolved["beta"], resolved["weight_decay"]) == (0.5, 0.1, 0.0)


def test_what_may_change_on_resume_is_declared_on_the_fields():
    declared = {f.name for f in dataclasses.fields(Config) if f.metadata.get("resumable")}
    assert resumable_fields() == declared
    # how a run runs may change; what it computes may not
    assert {"progress", "checkpoint_every", "keep_checkpoints", "conv", "devices"} <= declared
    assert not {"optimizer", "lr", "alpha", "beta", "seeds", "batch_size", "width"} & declared


def test_a_bad_value_is_refused_naming_its_flag():
    with pytest.raises(ConfigError, match="--width"):
        Config(width=0.0).validate()
    with pytest.raises(ConfigError, match="--conv: must be one of auto, native, matmul"):
        Config(conv="fft").validate()


def test_the_long_preset_runs_ten_times_the_quick_presets_steps():
    def steps(name):
        config = preset(name, "mnist")
        return config.train_examples // config.batch_size * config.epochs

    assert steps("long") >= 10 * steps("quick")
    assert len(PRESETS["long"]["seeds"]) >= 2
    assert preset("quick", "cifar10").train_examples == PRESETS["quick"]["train_examples"] // 2
