"""The paper's Figure 1 problem reaches (1, 1) in float64."""

import jax.numpy as jnp
import numpy as np
import pytest

from inna_optax.paper.nonsmooth import FIG1_GAMMA, FIG1_START, fig1_loss, run_inna

pytestmark = pytest.mark.usefixtures("x64")  # compared in float64


@pytest.mark.parametrize("alpha, beta", [(1.3, 0.1), (0.5, 0.1)])
def test_fig1_reaches_minimum(alpha, beta):
    theta0 = jnp.asarray(FIG1_START, jnp.float64)
    thetas, losses = run_inna(fig1_loss, theta0, alpha, beta, FIG1_GAMMA, steps=100_000)
    assert thetas.dtype == jnp.float64
    assert thetas.shape == (100_001, 2)
    np.testing.assert_allclose(np.asarray(thetas[-1]), [1.0, 1.0], atol=1e-3)
    assert float(losses[-1]) < 1e-4
    assert float(losses[0]) == pytest.approx(float(fig1_loss(theta0)))


def test_fig1_loss_values():
    assert float(fig1_loss(jnp.array([1.0, 1.0]))) == 0.0
    assert float(fig1_loss(jnp.array([-1.0, 1.5]))) == pytest.approx(100 * 0.25 + 2)


def test_figure_1_shows_every_trajectory_whole_with_its_markers_named():
    pytest.importorskip("matplotlib")  # the train extra's; the core's floors run lacks it
    from benchmarks import fig1_nonsmooth

    results = fig1_nonsmooth.run(20_000)  # the widest swings come early
    fig = fig1_nonsmooth.figure(results)
    for ax, r in zip(fig.axes[:3], results, strict=True):
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        t = r["thetas"]
        assert x0 <= t[:, 0].min() and t[:, 0].max() <= x1
        assert y0 <= t[:, 1].min() and t[:, 1].max() <= y1
        names = [x.get_text() for x in ax.get_legend().get_texts()]
        assert names == ["start (-1, 1.5)", "minimum (1, 1)", "θ_k"]
    assert max(abs(x) for x in fig.axes[0].get_xlim()) > 3.5  # beta = 0.05's swing
    assert fig.axes[3].get_ylabel() == "J(θ_k)" and fig.axes[3].get_legend() is not None
