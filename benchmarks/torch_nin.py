"""The peer: our NiN in PyTorch, and INNA as a ``torch.optim.Optimizer``.

For the speed comparison of `benchmarks.peer_speed` only; PyTorch is the optional
``peer`` extra (``pip install -e ".[peer]"``), never a dependency of the package.

- :class:`NiN` has the layers of :class:`inna_optax.training.models.NiN`: the
  same blocks and widths, 'SAME' convolutions, 3 x 3 max pooling of stride 2 padded
  as XLA pads it (bottom and right), dropout, batch normalisation before each hidden
  ReLU (epsilon 1e-5, statistics' momentum 0.9 in Flax's convention), global average
  pooling; kernels drawn from the same law (a normal of variance 2/fan_in truncated
  at two standard deviations, as Flax's ``he_normal``), biases zero.
  :func:`load_flax` copies a Flax model's weights in, so that both give the same
  logits (tests/test_peer.py).
- :class:`INNA` is written from eq. (12) of Castera et al. (2021) in the form
  the paper states it, with psi stored, gamma_k = gamma_0 (k+1)^-q and
  psi_0 = (1 - alpha beta) theta_0 - (beta^2 - beta) v_0 (initial speed 1).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inna_optax.training.models import BLOCKS

_TRUNCATED_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


def _he_normal_(weight: torch.Tensor) -> None:
    fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
    std = math.sqrt(2.0 / fan_in) / _TRUNCATED_STD
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


def _same_pool(x: torch.Tensor) -> torch.Tensor:
    """3 x 3 max pooling of stride 2 with XLA's 'SAME' padding (the extra row and
    column at the bottom and right)."""
    h, w = x.shape[-2:]
    pad_h = max((math.ceil(h / 2) - 1) * 2 + 3 - h, 0)
    pad_w = max((math.ceil(w / 2) - 1) * 2 + 3 - w, 0)
    x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=-math.inf)
    return F.max_pool2d(x, 3, 2)


class NiN(nn.Module):
    """Network-in-Network as :class:`inna_optax.training.models.NiN` (NCHW)."""

    def __init__(self, num_classes=10, in_channels=3, width=1.0, dropout=0.5, norm=True):
        super().__init__()
        self.dropout = dropout
        convs, channels = [], in_channels
        for block in BLOCKS:
            for kernel, out in block:
                out = num_classes if out is None else max(1, round(out * width))
                conv = nn.Conv2d(channels, out, kernel, padding=kernel // 2)
                _he_normal_(conv.weight)
                nn.init.zeros_(conv.bias)
                convs.append(conv)
                channels = out
        self.convs = nn.ModuleList(convs)
        # Flax's momentum 0.9 keeps 0.9 of the old statistics: PyTorch's 0.1
        self.norms = nn.ModuleList(
            [nn.BatchNorm2d(c.out_channels, eps=1e-5, momentum=0.1) for c in convs[:-1]]
            if norm
            else []
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                if len(self.norms):
                    x = self.norms[i](x)
                x = F.relu(x)
            if i in (2, 5):
                x = F.dropout(_same_pool(x), self.dropout, self.training)
        return x.mean(dim=(2, 3))


def load_flax(model: NiN, params: dict, stats: dict | None = None) -> NiN:
    """Copies the weights of a Flax NiN (``nnx.state(model, nnx.Param)`` and
    ``nnx.BatchStat`` as pure dicts) into `model`: HWIO kernels become OIHW."""
    with torch.no_grad():
        for i, conv in enumerate(model.convs):
            p = params["convs"][i]
            conv.weight.copy_(torch.as_tensor(np.array(p["kernel"]).transpose(3, 2, 0, 1)))
            conv.bias.copy_(torch.as_tensor(np.array(p["bias"])))
        for i, bn in enumerate(model.norms):
            bn.weight.copy_(torch.as_tensor(np.array(params["norms"][i]["scale"])))
            bn.bias.copy_(torch.as_tensor(np.array(params["norms"][i]["bias"])))
            if stats is not None:
                bn.running_mean.copy_(torch.as_tensor(np.array(stats["norms"][i]["mean"])))
                bn.running_var.copy_(torch.as_tensor(np.array(stats["norms"][i]["var"])))
    return model


class INNA(torch.optim.Optimizer):
    """INNA, eq. (12) with psi stored: for each parameter theta with gradient v,

        theta <- theta + gamma_k ((1/beta - alpha) theta - psi/beta - beta v)
        psi   <- psi   + gamma_k ((1/beta - alpha) theta - psi/beta)

    (both right-hand sides at the old theta), gamma_k = lr (k+1)^-decay_power."""

    def __init__(self, params, lr=1.0, alpha=0.5, beta=0.1, decay_power=0.5):
        super().__init__(params, dict(lr=lr, alpha=alpha, beta=beta, decay_power=decay_power))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            alpha, beta = group["alpha"], group["beta"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:  # initial speed 1: the first move is -gamma_0 v_0
                    state["k"] = 0
                    state["psi"] = (1 - alpha * beta) * p - (beta**2 - beta) * p.grad
                psi, k = state["psi"], state["k"]
                gamma = group["lr"] * (k + 1) ** -group["decay_power"]
                common = (1 / beta - alpha) * p - psi / beta
                p.add_(gamma * (common - beta * p.grad))
                psi.add_(gamma * common)
                state["k"] = k + 1
