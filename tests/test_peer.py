"""The PyTorch peer of the speed benchmark (`benchmarks.torch_nin`,
`benchmarks.peer_speed`): the same network and the same INNA. Skipped without
PyTorch (the optional ``peer`` extra) but for the benchmark's own plumbing."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from benchmarks import peer_speed
from inna_optax.training.models import NiN


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize("norm", [True, False])
def test_the_torch_nin_gives_our_logits_for_our_weights(shape, norm):
    torch = pytest.importorskip("torch")
    from benchmarks import torch_nin

    x = np.random.default_rng(0).normal(size=(4, *shape)).astype(np.float32)
    ours = NiN(10, shape[-1], 0.25, norm=norm, rngs=nnx.Rngs(0))
    ours(x, train=True, key=jax.random.key(0))  # moves the batch-norm statistics
    params = nnx.state(ours, nnx.Param).to_pure_dict()
    stats = nnx.state(ours, nnx.BatchStat).to_pure_dict() if norm else None
    theirs = torch_nin.load_flax(torch_nin.NiN(10, shape[-1], 0.25, 0.5, norm), params, stats)
    x_nchw = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    theirs.eval()  # running statistics, no dropout
    np.testing.assert_allclose(theirs(x_nchw).detach().numpy(), ours(x), rtol=1e-4, atol=2e-5)
    theirs.train()
    theirs.dropout = ours.dropout = 0.0  # the batch's statistics
    np.testing.assert_allclose(
        theirs(x_nchw).detach().numpy(), ours(x, train=True), rtol=1e-4, atol=2e-5
    )


def test_the_torch_nin_draws_kernels_from_our_law():
    torch = pytest.importorskip("torch")
    from benchmarks import torch_nin

    torch.manual_seed(0)
    theirs = torch_nin.NiN(10, 3, 1.0)
    ours = nnx.state(NiN(10, 3, 1.0, rngs=nnx.Rngs(0)), nnx.Param).to_pure_dict()
    for i, conv in enumerate(theirs.convs):
        a = conv.weight.detach().numpy()
        b = np.asarray(ours["convs"][i]["kernel"])
        assert a.size == b.size
        np.testing.assert_allclose(a.std(), b.std(), rtol=0.1)  # sqrt(2 / fan_in)
        assert np.abs(a).max() <= 2 * np.sqrt(2 / np.prod(b.shape[:3])) / 0.8796 + 1e-6


def test_the_torch_inna_is_eq_12_as_inna_optax_computes_it(x64):
    """Five steps of the PyTorch optimizer against `inna_optax.inna` on the same
    gradients, in float64 (gamma_0 (k+1)^-1/2, psi_0 with initial speed 1)."""
    torch = pytest.importorskip("torch")
    import optax

    import inna_optax
    from benchmarks import torch_nin

    rng = np.random.default_rng(0)
    theta0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(5)]
    p = torch.nn.Parameter(torch.from_numpy(theta0.copy()))
    opt = torch_nin.INNA([p], lr=0.3, alpha=0.5, beta=0.1, decay_power=0.5)
    tx = inna_optax.inna(inna_optax.inverse_power_decay(0.3, 0.5), alpha=0.5, beta=0.1)
    theta = jax.numpy.asarray(theta0)
    state = tx.init(theta)
    for g in grads:
        p.grad = torch.from_numpy(g)
        opt.step()
        updates, state = tx.update(jax.numpy.asarray(g), state, theta)
        theta = optax.apply_updates(theta, updates)
    assert theta.dtype == np.float64
    np.testing.assert_allclose(p.detach().numpy(), np.asarray(theta), rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_our_contenders_are_the_command_lines_settings():
    from inna_optax.training import devices

    spec = dict(width=0.5, batch_size=32, norm=True)
    settings = {
        name: peer_speed.jax_settings({**spec, "name": name})
        for name in ("jax-native", "jax-auto", "jax-auto-kept", "jax-auto-one-heap")
    }
    for name, (config, heap_limit) in settings.items():
        assert (config.width, config.batch_size, config.norm) == (0.5, 32, True)
        assert config.conv == ("native" if name == "jax-native" else "auto"), name
        assert config.keep_freed_memory == (name == "jax-auto-kept"), name
        assert heap_limit == (-1 if name == "jax-auto-one-heap" else devices.CPU_HEAP_LIMIT)


def test_the_peer_benchmark_times_our_contenders_without_pytorch(tmp_path, capsys):
    """Two of our four contenders run (each a process that compiles its step); the
    other two differ only in the settings the test above checks."""
    argv = ["--widths", "0.0625", "--shapes", "28,28,1", "--rounds", "2", "--block", "2"]
    ours = "jax-native,jax-auto-kept"
    argv += ["--warmup", "1", "--contenders", ours, "--out", str(tmp_path)]
    assert peer_speed.main(argv) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ours.split(","))
    import json

    rows = json.loads((tmp_path / "peer_speed.json").read_text())["rows"]
    assert rows[0]["shape"] == "28x28x1"
    assert set(rows[0]["steps_per_second"]) == set(ours.split(","))


@pytest.mark.slow
@pytest.mark.parametrize("bias, tie", [(True, False), (False, True)])
def test_the_torch_gpt_gives_our_logits_for_our_weights(bias, tie):
    torch = pytest.importorskip("torch")
    from benchmarks import torch_gpt
    from inna_optax.training.models import GPT

    ours = GPT(65, 16, 2, 4, 32, bias=bias, tie_embeddings=tie, rngs=nnx.Rngs(0))
    params = nnx.state(ours, nnx.Param).to_pure_dict()
    theirs = torch_gpt.GPT(65, 16, 2, 4, 32, bias=bias, tie_embeddings=tie)
    assert sum(p.numel() for p in theirs.parameters()) == sum(
        np.size(x) for x in jax.tree.leaves(params)
    )
    theirs = torch_gpt.load_flax(theirs, params).eval()
    ids = np.random.default_rng(0).integers(0, 65, (3, 16))
    np.testing.assert_allclose(
        theirs(torch.from_numpy(ids)).detach().numpy(), ours(ids), rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow
def test_the_gpt_peer_benchmark_times_our_contenders_without_pytorch(tmp_path, capsys):
    from benchmarks import gpt_peer_speed

    argv = ["--shapes", "cpu", "--contenders", "jax", "--rounds", "1", "--block", "2"]
    assert gpt_peer_speed.main([*argv, "--warmup", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpt_peer_speed.json").read_text())
    assert result["rows"][0]["steps_per_second"]["jax"] > 0
    assert "GPT training steps per second" in capsys.readouterr().out


def test_nanogpts_learning_rate_function_transcribed():
    """nanoGPT's get_lr for its CPU recipe: (it + 1) / 101 of 1e-3 while warming up,
    then a cosine from 1e-3 at step 100 to 1e-4 at step 2,000, half-way at 1,050."""
    from benchmarks.nanogpt_torch import nanogpt_lr

    values = [nanogpt_lr(it, 2000) for it in (0, 99, 100, 1050, 2000, 2001)]
    np.testing.assert_allclose(
        values, [1e-3 / 101, 1e-3 * 100 / 101, 1e-3, 5.5e-4, 1e-4, 1e-4], rtol=1e-12
    )


def test_nanogpt_in_pytorch_trains_and_scores_our_validation_windows(tmp_path, capsys):
    pytest.importorskip("torch")
    from benchmarks import nanogpt_torch

    text = tmp_path / "input.txt"
    rng = np.random.default_rng(0)
    text.write_text("".join(rng.choice(list("abcde fgh\n"), 3000)), encoding="utf-8")
    argv = ["--data", str(text), "--seeds", "0,1", "--steps", "4", "--eval-every", "2"]
    argv += ["--test-examples", "32", "--out", str(tmp_path)]
    assert nanogpt_torch.main(argv) == 0
    result = json.loads((tmp_path / "nanogpt_torch.json").read_text())
    assert result["valid_windows"] == 32 and result["eval_step"] == [2, 4]
    assert [len(r["valid_loss"]) for r in result["seeds_runs"]] == [2, 2]
    # a loss near log(vocabulary) at the start: 10 characters
    assert abs(result["seeds_runs"][0]["valid_loss"][0] - np.log(10)) < 0.5
    assert "over 2 seeds" in capsys.readouterr().out
