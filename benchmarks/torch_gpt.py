"""The peer of the character-level GPT: our :class:`~inna_optax.training.models.GPT`
in PyTorch, for the speed comparison of `benchmarks.gpt_peer_speed` only (PyTorch is
the optional ``peer`` extra, never a dependency of the package).

The same layers in the same order: token and position embeddings, pre-LayerNorm
blocks (causal self-attention through one (width, 3 width) projection split into
queries, keys and values; a GELU MLP four times as wide, GELU's tanh form as
``jax.nn.gelu``), a final LayerNorm (epsilon 1e-6, Flax's) and a head, tied to the
token embedding or not; biases in the LayerNorms and MLPs or none, dropout on the
embeddings, the attention weights and each block's outputs. :func:`load_flax` copies a
Flax model's weights in, so that both give the same logits (tests/test_peer.py).
``gelu="none"`` and ``eps=1e-5`` make it nanoGPT's own (`benchmarks.nanogpt_torch`).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, width: int, heads: int, bias: bool, dropout: float, gelu: str, eps: float):
        super().__init__()
        self.heads, self.dropout, self.gelu = heads, dropout, gelu
        self.ln1 = nn.LayerNorm(width, eps=eps, bias=bias)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.out = nn.Linear(width, width, bias=False)
        self.ln2 = nn.LayerNorm(width, eps=eps, bias=bias)
        self.up = nn.Linear(width, 4 * width, bias=bias)
        self.down = nn.Linear(4 * width, width, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (
            z.view(b, t, self.heads, c // self.heads).transpose(1, 2)
            for z in self.qkv(self.ln1(x)).split(c, dim=-1)
        )
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, t, c)))
        return x + self.drop(self.down(F.gelu(self.up(self.ln2(x)), approximate=self.gelu)))


class GPT(nn.Module):
    """The GPT of `vocab` tokens, `context` positions, `layers` blocks of `heads`
    heads and `width` channels (the arguments of the Flax model)."""

    def __init__(
        self,
        vocab: int,
        context: int,
        layers: int,
        heads: int,
        width: int,
        dropout: float = 0.0,
        bias: bool = True,
        tie_embeddings: bool = False,
        gelu: str = "tanh",
        eps: float = 1e-6,
    ):
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(context, width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(width, heads, bias, dropout, gelu, eps) for _ in range(layers)
        )
        self.ln = nn.LayerNorm(width, eps=eps, bias=bias)
        self.head = None if tie_embeddings else nn.Linear(width, vocab, bias=False)
        for name, p in self.named_parameters():  # GPT-2's initialisation, as ours
            if p.dim() >= 2:
                std = (
                    0.02 / (2 * layers) ** 0.5
                    if name.endswith(("out.weight", "down.weight"))
                    else 0.02
                )
                nn.init.normal_(p, std=std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.tokens(ids) + self.positions(torch.arange(ids.shape[-1])))
        for block in self.blocks:
            x = block(x)
        x = self.ln(x)
        return F.linear(x, self.tokens.weight) if self.head is None else self.head(x)


def load_flax(model: GPT, params: dict) -> GPT:
    """Copies the weights of a Flax GPT (``nnx.state(gpt, nnx.Param).to_pure_dict()``)
    into `model`, transposing the linear kernels."""

    def put(target: torch.Tensor, value, transpose: bool = False) -> None:
        value = np.asarray(value)
        with torch.no_grad():
            target.copy_(torch.from_numpy((value.T if transpose else value).copy()))

    def norm(target: nn.LayerNorm, value: dict) -> None:
        put(target.weight, value["scale"])
        if target.bias is not None:
            put(target.bias, value["bias"])

    def linear(target: nn.Linear, value: dict) -> None:
        put(target.weight, value["kernel"], transpose=True)
        if target.bias is not None:
            put(target.bias, value["bias"])

    put(model.tokens.weight, params["tokens"]["embedding"])
    put(model.positions.weight, params["positions"]["embedding"])
    for i, block in enumerate(model.blocks):
        ours = params["blocks"][i]
        norm(block.ln1, ours["ln1"])
        norm(block.ln2, ours["ln2"])
        linear(block.qkv, ours["attn"]["qkv"])
        linear(block.out, ours["attn"]["out"])
        linear(block.up, ours["up"])
        linear(block.down, ours["down"])
    norm(model.ln, params["ln"])
    if model.head is not None:
        linear(model.head, params["head"])
    return model
