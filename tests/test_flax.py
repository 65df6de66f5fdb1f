"""INNA as the `tx` of flax.nnx.Optimizer."""

import jax
import jax.numpy as jnp
import optax
import pytest

import inna_optax

nnx = pytest.importorskip("flax.nnx")


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(4, 16, rngs=rngs)
        self.l2 = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(jax.nn.relu(self.l1(x)))


def test_nnx_optimizer_trains_with_inna():
    model = MLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, inna_optax.inna(0.1), wrt=nnx.Param)
    x = jax.random.normal(jax.random.key(1), (64, 4))
    y = jnp.sum(x, axis=1, keepdims=True)

    def loss_fn(model):
        return jnp.mean((model(x) - y) ** 2)

    @nnx.jit
    def train_step(model, optimizer):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    first = float(loss_fn(model))
    for _ in range(300):
        train_step(model, optimizer)
    assert float(loss_fn(model)) < 0.1 * first
    assert int(optimizer.step[...]) == 300


def test_nnx_optimizer_matches_plain_optax_first_step():
    model = MLP(nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    x = jnp.ones((2, 4))

    def loss_fn(model):
        return jnp.mean(model(x) ** 2)

    tx = inna_optax.inna(0.05)
    grads = nnx.grad(loss_fn)(model)
    updates, _ = tx.update(grads, tx.init(params), params)
    expected = optax.apply_updates(params, updates)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    optimizer.update(model, grads)
    got = nnx.state(model, nnx.Param)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert jnp.allclose(a, b, rtol=1e-6)
