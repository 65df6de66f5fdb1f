"""The optimizer registry: INNAprop and AdamW with the authors' defaults, the
schedules, and each optimizer's own hyperparameter defaults."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from runs import args, cli

import inna_optax
from inna_optax.training import Config, ConfigError
from inna_optax.training.optimizers import OPTIMIZERS, make


def first_updates(tx, steps=3):
    params = {"w": jnp.linspace(-1.0, 1.0, 6), "b": jnp.ones(2)}
    state = tx.init(params)
    out = []
    for k in range(steps):
        grads = jax.tree.map(lambda p, k=k: (k + 1) * 0.3 * p - 0.1, params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        out.append(updates)
    return out


@pytest.mark.parametrize(
    "name, expected",
    [
        ("innaprop", lambda: inna_optax.innaprop(1e-3, 0.1, 0.9, weight_decay=0.01)),
        ("adamw", lambda: optax.adamw(1e-3, weight_decay=0.01)),
        ("inna", lambda: inna_optax.inna(inna_optax.inverse_power_decay(1.0), 0.5, 0.1)),
    ],
)
def test_registry_defaults_are_the_authors(name, expected):
    got = first_updates(make(name, OPTIMIZERS[name].lr))
    want = first_updates(expected())
    for g, w in zip(got, want, strict=True):
        for k in g:
            np.testing.assert_allclose(g[k], w[k], rtol=1e-6)


def test_each_default_has_one_source_the_factorys_signature():
    """The registry's defaults are read from the factories (AdamW's weight decay,
    PyTorch's 0.01, is the one override), the flags' help is written from the
    registry, and the README and the docs state the same values."""
    import dataclasses
    import inspect
    from pathlib import Path

    helps = {f.name: f.metadata["help"] for f in dataclasses.fields(Config)}
    for name, spec in OPTIMIZERS.items():
        signature = inspect.signature(spec.build).parameters
        for field, value in spec.defaults.items():
            assert value == spec.overrides.get(field, signature[field].default), (name, field)
    assert OPTIMIZERS["adamw"].defaults == {"weight_decay": 0.01, "b1": 0.9, "b2": 0.999}
    for field in ("alpha", "beta", "weight_decay", "b1", "b2", "sigma"):
        for name, spec in OPTIMIZERS.items():
            if field in spec.defaults:
                assert f"{name} {spec.defaults[field]:g}" in helps[field]
    innaprop = OPTIMIZERS["innaprop"].defaults
    stated = "(α, β) = ({alpha:g}, {beta:g}), weight decay {weight_decay:g}".format(**innaprop)
    root = Path(__file__).resolve().parents[1]
    for page in ("README.md", "docs/getting_started.md"):
        text = " ".join((root / page).read_text().split())
        assert stated in text, page


def test_cosine_schedule_reaches_zero_at_the_last_step():
    schedule_tx = make("adamw", 1e-3, schedule="cosine", total_steps=10)
    params = {"w": jnp.ones(3)}
    state = schedule_tx.init(params)
    # optax.adamw keeps the schedule's count in its state: step 10 has gamma = 0
    for _ in range(10):
        _, state = schedule_tx.update(params, state, params)
    updates, _ = schedule_tx.update(params, state, params)
    np.testing.assert_allclose(updates["w"], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="number of steps"):
        make("inna", 1.0, schedule="cosine")


def test_weight_decay_is_refused_for_optimizers_without_it():
    with pytest.raises(ConfigError, match="--weight-decay"):
        Config(optimizer="adam", weight_decay=0.1).validate()


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["innaprop", "adamw"])
def test_cli_trains_innaprop_and_adamw_with_a_cosine_schedule(
    tmp_path,
    mnist_dir,
    capsys,
    optimizer,
):
    # one device: this test is about the optimizers, the sharded path has its own
    argv = args(mnist_dir, tmp_path / "run", "--optimizer", optimizer, "--schedule", "cosine")
    argv += ["--devices", "1"]
    code, out, err = cli(capsys, [*argv, "--epochs", "2"])
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["schedule"] == "cosine"
    assert summary["hyperparameters"]["weight_decay"] == 0.01
    if optimizer == "innaprop":
        assert summary["hyperparameters"]["alpha"] == 0.1
        assert summary["hyperparameters"]["beta"] == 0.9
    assert np.isfinite(summary["train_loss"])


@pytest.mark.parametrize(
    "name, values, named",
    [
        ("sgd", {"alpha": 0.5}, "alpha"),
        ("inna", {"beat": 0.1}, "beat"),
        ("adamw", {"psi_init": "params"}, "psi_init"),
    ],
)
def test_make_refuses_a_hyperparameter_the_optimizer_does_not_take(name, values, named):
    with pytest.raises(ValueError, match=f"{name} takes no hyperparameter {named}"):
        make(name, 0.1, **values)


def test_make_refuses_an_unknown_optimizer():
    with pytest.raises(ValueError, match="unknown optimizer 'adma'"):
        make("adma", 0.1)
