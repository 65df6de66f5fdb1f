"""Weight decay under INNA's dynamics: the closed form of the module docstring of
`inna_optax._weight_decay` against the optimizers themselves, and the conversion
from AdamW's decay."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import inna_optax


def _zero_gradient_path(tx, steps: int) -> np.ndarray:
    """theta_k / theta_0, k = 0..steps, for theta_0 = 1 and zero gradients."""
    params = jnp.ones(())

    def step(carry, _):
        params, state = carry
        updates, state = tx.update(jnp.zeros(()), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), params

    _, path = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    return np.concatenate([[1.0], np.asarray(path)])


@pytest.mark.parametrize(
    "make, alpha, beta, lam",
    [
        (inna_optax.inna, 0.5, 0.1, 0.1),  # underdamped: overshoots 0
        (inna_optax.inna, 0.5, 0.1, 0.004),  # overdamped
        (inna_optax.innaprop, 0.1, 0.9, 0.1),  # INNAprop's defaults, underdamped
        (inna_optax.innaprop, 2.0, 2.0, 0.1),  # the GPT-2 setting, overdamped
    ],
)
def test_small_steps_follow_the_closed_form(x64, make, alpha, beta, lam):
    gamma, steps = 1e-3, 3000
    path = _zero_gradient_path(make(gamma, alpha, beta, weight_decay=lam), steps)
    expected = inna_optax.weight_decay_response(gamma * np.arange(steps + 1), lam, alpha, beta)
    np.testing.assert_allclose(path, expected, atol=3e-3)


def test_the_numbers_of_the_docstring(x64):
    """gamma = 0.05, lambda = 0.1, zero gradients: INNA at its defaults and
    INNAprop at theirs against AdamW's (1 - gamma lambda)^k."""
    inna = _zero_gradient_path(inna_optax.inna(0.05, weight_decay=0.1), 60)
    prop = _zero_gradient_path(inna_optax.innaprop(0.05, weight_decay=0.1), 60)
    adamw = _zero_gradient_path(optax.adamw(0.05, weight_decay=0.1), 60)
    np.testing.assert_allclose(inna[[10, 30, 60]], [0.836, 0.199, -0.37], atol=5e-3)
    np.testing.assert_allclose(prop[[10, 30, 60]], [0.938, 0.761, 0.422], atol=5e-3)
    np.testing.assert_allclose(adamw[[10, 30, 60]], 0.995 ** np.asarray([10, 30, 60]), rtol=1e-12)


def test_decay_rate_is_the_slow_roots_and_about_lambda_over_alpha_beta():
    for alpha, beta, lam in [(0.5, 0.1, 1e-3), (2.0, 2.0, 0.1), (0.1, 0.9, 1e-4)]:
        r = inna_optax.decay_rate(lam, alpha, beta)
        assert r**2 - (alpha + lam) * r + lam / beta == pytest.approx(0, abs=1e-12)
        assert r < (alpha + lam) / 2
    assert inna_optax.decay_rate(1e-5, 0.5, 0.1) == pytest.approx(1e-5 / 0.05, rel=1e-3)
    # underdamped: the envelope's rate
    assert inna_optax.decay_rate(0.1, 0.5, 0.1) == pytest.approx(0.3)


@pytest.mark.parametrize("alpha, beta, adamw", [(0.5, 0.1, 0.1), (0.1, 0.9, 0.01), (2, 2, 0.1)])
def test_equivalent_weight_decay_shrinks_like_adamw(x64, alpha, beta, adamw):
    """With the converted lambda, theta's long-run log-slope per unit of t is
    AdamW's -lambda'."""
    lam = inna_optax.equivalent_weight_decay(adamw, alpha, beta)
    assert inna_optax.decay_rate(lam, alpha, beta) == pytest.approx(adamw, rel=1e-12)
    gamma = 0.01
    horizon = 12 / min(adamw, (alpha + lam) / 2 - adamw)  # the fast mode has died out
    steps = int(horizon / gamma)
    path = _zero_gradient_path(inna_optax.inna(gamma, alpha, beta, weight_decay=lam), steps)
    late = slice(steps // 2, steps)
    slope = np.polyfit(gamma * np.arange(steps + 1)[late], np.log(path[late]), 1)[0]
    # the discrete step's rate differs from the flow's by O(gamma)
    assert slope == pytest.approx(-adamw, rel=2 * gamma * (alpha + 1 / beta))


def test_out_of_reach_or_bad_values_are_refused():
    with pytest.raises(ValueError, match="out of reach"):
        inna_optax.equivalent_weight_decay(20.0, alpha=0.5, beta=0.1)
    with pytest.raises(ValueError, match="alpha"):
        inna_optax.weight_decay_response(1.0, 0.1, alpha=-1, beta=0.1)
    with pytest.raises(ValueError, match="weight_decay"):
        inna_optax.decay_rate(math.nan, 0.5, 0.1)


def _reach(alpha: float, beta: float) -> float:
    """The fastest rate INNA's weight decay reaches: the double root where the
    underdamped regime ends (alpha beta < 1), else the supremum 1/beta."""
    ab = alpha * beta
    return (1 + math.sqrt(1 - ab)) / beta if ab < 1 else 1 / beta


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("beta", [0.05, 0.1, 0.9, 2.0])
def test_equivalent_weight_decay_has_the_rate_asked_or_refuses(alpha, beta):
    """Over a grid of lambda' in both regimes (below and above the critical
    (1 - sqrt(1 - alpha beta)) / beta): the lambda returned decays at lambda' by the
    slow root's rate, and no smaller lambda reaches it; above the reachable rate,
    a refusal naming the limit."""
    reach = _reach(alpha, beta)
    for target in [*np.geomspace(1e-4, 60, 41), 0.999 * reach, 1.001 * reach]:
        if target > reach or (alpha * beta >= 1 and target >= reach):
            with pytest.raises(ValueError, match=f"out of reach.*{reach!r}"):
                inna_optax.equivalent_weight_decay(target, alpha, beta)
            continue
        lam = inna_optax.equivalent_weight_decay(target, alpha, beta)
        assert lam >= 0
        assert inna_optax.decay_rate(lam, alpha, beta) == pytest.approx(target, rel=1e-6)
        below = np.linspace(0, lam, 41)[:-1]
        assert all(inna_optax.decay_rate(x, alpha, beta) < target for x in below)


def test_equivalent_weight_decay_above_the_overdamped_limit_is_underdamped():
    """The reviewer's case: at (0.5, 0.1), asking 0.3 (above 0.253) returned 0.00619,
    whose rate is 0.206; the answer is 0.1, underdamped, its envelope at rate 0.3."""
    lam = inna_optax.equivalent_weight_decay(0.3, 0.5, 0.1)
    assert lam == pytest.approx(0.1)
    assert inna_optax.decay_rate(lam, 0.5, 0.1) == pytest.approx(0.3)
