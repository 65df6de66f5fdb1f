"""INNAprop against a literal float64 transcription of the authors' update."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from reference import innaprop_reference
from test_inna import assert_close, make_problem, run_inna

import inna_optax

# (alpha, beta, gamma, lambda, sigma, eps)
CASES = {
    "authors_defaults": (0.1, 0.9, 1e-3, 0.01, 0.999, 1e-8),
    "large_steps": (0.1, 0.9, 0.05, 0.01, 0.999, 1e-8),
    "paper_inna_damping": (0.5, 0.1, 0.01, 0.1, 0.99, 1e-6),
    "no_decay": (1.0, 2.0, 0.02, 0.0, 0.5, 1e-3),
    # sigma = 0 is sign descent near g = 0, where the l1 kinks amplify rounding:
    # a larger eps keeps the comparison meaningful over 300 steps
    "no_memory": (1.0, 2.0, 0.02, 0.01, 0.0, 0.1),
    "big_eps": (2.0, 2.0, 0.1, 0.05, 0.9, 0.1),
    "gamma_above_beta": (0.1, 0.2, 0.3, 0.01, 0.999, 1e-8),
}


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("case", list(CASES))
def test_matches_the_authors_update(case):
    alpha, beta, gamma, wd, sigma, eps = CASES[case]
    steps = 300
    loss, grad_np, theta0 = make_problem()
    tx = inna_optax.innaprop(gamma, alpha, beta, sigma=sigma, eps=eps, weight_decay=wd)
    params, state = run_inna(tx, loss, theta0, steps)
    thetas, psis = innaprop_reference(grad_np, theta0, alpha, beta, [gamma] * steps, sigma, eps, wd)
    assert all(np.all(np.isfinite(v)) for v in thetas[-1].values())
    assert_close(params, thetas[-1], rtol=1e-9)
    assert_close(state.psi(params), psis[-1], rtol=1e-9)
    assert int(state.count) == steps


@pytest.mark.usefixtures("x64")
def test_matches_the_authors_update_with_a_schedule():
    alpha, beta, wd, sigma, eps, steps = 0.1, 0.9, 0.01, 0.999, 1e-8, 300
    loss, grad_np, theta0 = make_problem(seed=1)
    schedule = optax.cosine_decay_schedule(0.05, steps)
    tx = inna_optax.innaprop(schedule, alpha, beta, sigma=sigma, eps=eps, weight_decay=wd)
    params, _ = run_inna(tx, loss, theta0, steps)
    gammas = [float(schedule(k)) for k in range(steps)]
    thetas, _ = innaprop_reference(grad_np, theta0, alpha, beta, gammas, sigma, eps, wd)
    assert_close(params, thetas[-1], rtol=1e-9)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("gamma", [0.5, 0.8])  # gamma = beta, then gamma > beta
def test_gamma_equal_to_beta_and_above_runs_eq12(gamma):
    # The authors' form divides by beta - gamma; the eq. (12) form does not.
    alpha, beta, wd, sigma, eps, steps = 0.1, 0.5, 0.01, 0.99, 1e-8, 200
    loss, grad_np, theta0 = make_problem(seed=3)
    tx = inna_optax.innaprop(gamma, alpha, beta, sigma=sigma, eps=eps, weight_decay=wd)
    params, _ = run_inna(tx, loss, theta0, steps)
    ref = innaprop_reference(grad_np, theta0, alpha, beta, [gamma] * steps, sigma, eps, wd, "eq12")
    assert all(np.all(np.isfinite(np.asarray(v))) for v in params.values())
    assert_close(params, ref[0][-1], rtol=1e-9)


@pytest.mark.usefixtures("x64")
def test_the_two_reference_forms_agree():
    _, grad_np, theta0 = make_problem()
    args = (grad_np, theta0, 0.1, 0.9, [0.05] * 50, 0.99, 1e-8, 0.01)
    a, _ = innaprop_reference(*args)
    b, _ = innaprop_reference(*args, form="eq12")
    assert_close(a[-1], b[-1], rtol=1e-12)


def test_state_is_twice_the_params_like_adamw():
    params = {"w": jnp.ones((64, 32)), "b": jnp.ones(32, jnp.bfloat16)}

    def nbytes(tree):
        return sum(x.nbytes for x in jax.tree.leaves(tree) if x.ndim > 0)

    ours = inna_optax.innaprop(1e-3).init(params)
    theirs = optax.adamw(1e-3).init(params)
    assert nbytes(ours) == 2 * nbytes(params) == nbytes(theirs)
    chex.assert_trees_all_equal_dtypes(ours.nu, params)


def test_first_update_is_the_rmsprop_step():
    # psi_0 = (1 - alpha beta) theta_0, so with no decay the first move is
    # -gamma beta g / (|g| + eps), about -gamma beta sign(g) (v_hat_1 = g^2)
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    grads = {"w": jnp.array([0.5, -4.0, 0.0])}
    tx = inna_optax.innaprop(0.1, alpha=0.3, beta=0.7, weight_decay=0.0)
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], [-0.07, 0.07, 0.0], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(alpha=-0.1), "alpha"),
        (dict(beta=0.0), "beta"),
        (dict(beta=float("inf")), "beta"),
        (dict(sigma=1.0), "sigma"),
        (dict(sigma=-0.1), "sigma"),
        (dict(eps=-1e-8), "eps"),
        (dict(weight_decay=-0.01), "weight_decay"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(learning_rate=float("nan")), "learning_rate"),
        (dict(learning_rate=jnp.array(-1e-3)), "learning_rate"),
    ],
)
def test_bad_values_raise_naming_the_argument(kwargs, name):
    kwargs = {"learning_rate": 1e-3, **kwargs}
    with pytest.raises(ValueError, match=f"INNAprop: `{name}`"):
        inna_optax.innaprop(**kwargs)


def test_traced_hyperparameters_under_vmap():
    params = {"w": jnp.linspace(-1.0, 1.0, 5)}
    grads = {"w": jnp.linspace(0.5, -0.5, 5)}

    def one(lr, wd):
        tx = inna_optax.innaprop(lr, weight_decay=wd)
        updates, _ = tx.update(grads, tx.init(params), params)
        return updates["w"]

    lrs, wds = jnp.array([1e-3, 1e-2]), jnp.array([0.0, 0.1])
    out = jax.vmap(one)(lrs, wds)
    for i in range(2):
        chex.assert_trees_all_close(out[i], one(float(lrs[i]), float(wds[i])), rtol=1e-6)
