"""The paper's Network-in-Network (Lin et al., 2014, CIFAR version, ReLU), in Flax NNX.

Imported by the training code only: the core optimizer does not import Flax.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from inna_optax.training import convolution

# Kernel initialisations: a normal law of variance scale / fan, truncated at 2 std,
# or Keras 2.2's plain normal of standard deviation 0.05.
INITS = {
    "lecun": nnx.initializers.lecun_normal(),  # 1 / fan_in (Flax's default)
    "he": nnx.initializers.he_normal(),  # 2 / fan_in
    "glorot": nnx.initializers.glorot_normal(),  # 2 / (fan_in + fan_out) (Keras's family)
    "keras": nnx.initializers.normal(0.05),  # Keras 2.2's RandomNormal default, std 0.05
}

# (kernel size, channels) per convolution; each block ends with a max pool.
BLOCKS = (
    ((5, 192), (1, 160), (1, 96)),
    ((5, 192), (1, 192), (1, 192)),
    ((3, 192), (1, 192), (1, None)),  # None: num_classes
)


class NiN(nnx.Module):
    """Network-in-Network: three blocks of a k x k convolution and two 1 x 1 ones.

    Block 1 and 2 end with 3 x 3 max pooling of stride 2 and dropout; block 3
    ends with a 1 x 1 convolution to `num_classes` channels and global average
    pooling, giving the logits. Biases start at zero. About 0.97M parameters for
    10 classes and `width=1`.

    Args:
      num_classes: number of classes.
      in_channels: 1 for MNIST, 3 for CIFAR.
      width: multiplier of every hidden channel count (for CPU-sized runs).
      dropout: dropout rate after blocks 1 and 2 (0.5 in the paper's NiN).
      init: the kernels' initialisation, a key of :data:`INITS`.
      norm: batch normalisation before each hidden ReLU (its statistics are
        ``nnx.BatchStat`` variables, updated by a training call).
      conv: how the convolutions and max poolings are computed, one of
        :data:`~inna_optax.training.convolution.CONVOLUTIONS`: ``"auto"`` (matrix
        products and strided slices when lowered for a CPU, XLA's native
        convolution and pooling elsewhere), ``"native"`` or ``"matmul"``; the same
        network up to float rounding.
      rngs: `nnx.Rngs` for the initialisation.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from inna_optax.training.models import NiN, count_params
      >>> model = NiN(10, in_channels=1, width=0.25, rngs=nnx.Rngs(0))
      >>> model(jnp.zeros((2, 28, 28, 1))).shape  # logits
      (2, 10)

    References:
      Lin, Chen and Yan, `Network In Network <https://arxiv.org/abs/1312.4400>`_,
      ICLR 2014; the paper's NiN is in Castera et al., JMLR 2021, section 5.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
        dropout: float = 0.5,
        *,
        init: str = "he",
        norm: bool = False,
        conv: str = "auto",
        rngs: nnx.Rngs,
    ):
        if width <= 0:
            raise ValueError(f"NiN: `width` must be > 0, got {width!r}.")
        if init not in INITS:
            raise ValueError(f"NiN: `init` must be one of {sorted(INITS)}, got {init!r}.")
        self.dropout = dropout
        conv_fn = convolution.get(conv)
        self.max_pool = convolution.get_max_pool(conv)
        convs = []
        channels = in_channels
        for block in BLOCKS:
            for kernel, out in block:
                out = num_classes if out is None else max(1, round(out * width))
                convs.append(
                    nnx.Conv(
                        channels,
                        out,
                        (kernel, kernel),
                        padding="SAME",
                        kernel_init=INITS[init],
                        conv_general_dilated=conv_fn,
                        rngs=rngs,
                    )
                )
                channels = out
        self.convs = nnx.List(convs)
        # Batch normalisation before each hidden ReLU (running statistics for evaluation)
        self.norms = nnx.List(
            [nnx.BatchNorm(c.out_features, momentum=0.9, rngs=rngs) for c in convs[:-1]]
            if norm
            else []
        )

    def __call__(self, x: jax.Array, *, train: bool = False, key: jax.Array | None = None):
        """Logits for images `x` of shape (batch, height, width, channels).

        With `train=True` and `dropout > 0`, `key` drives the dropout masks.
        """
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                if self.norms:
                    x = self.norms[i](x, use_running_average=not train)
                x = jax.nn.relu(x)
            if i in (2, 5):  # end of block 1 and block 2
                x = self.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
                if train and self.dropout > 0:
                    if key is None:
                        raise ValueError("NiN: training with dropout needs a `key`.")
                    key, sub = jax.random.split(key)
                    keep = jax.random.bernoulli(sub, 1.0 - self.dropout, x.shape)
                    x = jnp.where(keep, x / (1.0 - self.dropout), 0.0)
        return jnp.mean(x, axis=(1, 2))


def count_params(model: nnx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


_GPT_INIT = nnx.initializers.normal(0.02)  # GPT-2's


def _residual(layers: int):
    """GPT-2's initialisation of the projections into the residual stream."""
    return nnx.initializers.normal(0.02 / (2 * layers) ** 0.5)


class CausalSelfAttention(nnx.Module):
    """Multi-head self-attention in which each position sees only itself and the
    positions before it."""

    def __init__(self, width: int, heads: int, layers: int, *, rngs: nnx.Rngs):
        if width % heads:
            raise ValueError(f"GPT: `width` {width} is not divisible by `heads` {heads}.")
        self.heads = heads
        self.qkv = nnx.Linear(width, 3 * width, use_bias=False, kernel_init=_GPT_INIT, rngs=rngs)
        self.out = nnx.Linear(
            width, width, use_bias=False, kernel_init=_residual(layers), rngs=rngs
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        b, t, c = x.shape
        q, k, v = (
            z.reshape(b, t, self.heads, c // self.heads) for z in jnp.split(self.qkv(x), 3, -1)
        )
        return self.out(jax.nn.dot_product_attention(q, k, v, is_causal=True).reshape(b, t, c))


class Block(nnx.Module):
    """A pre-LayerNorm transformer block: x + attention(LN(x)), then x + MLP(LN(x))
    with a GELU MLP four times as wide."""

    def __init__(self, width: int, heads: int, layers: int, *, rngs: nnx.Rngs):
        self.ln1 = nnx.LayerNorm(width, rngs=rngs)
        self.attn = CausalSelfAttention(width, heads, layers, rngs=rngs)
        self.ln2 = nnx.LayerNorm(width, rngs=rngs)
        self.up = nnx.Linear(width, 4 * width, kernel_init=_GPT_INIT, rngs=rngs)
        self.down = nnx.Linear(4 * width, width, kernel_init=_residual(layers), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.attn(self.ln1(x))
        return x + self.down(jax.nn.gelu(self.up(self.ln2(x))))


class GPT(nnx.Module):
    """A decoder-only transformer (GPT-2's layout, at any size): token and learned
    position embeddings, `layers` pre-LayerNorm blocks of causal self-attention and
    a GELU MLP, a final LayerNorm and a linear head to the vocabulary's logits.

    Args:
      vocab: number of tokens (characters for a character-level model).
      context: the longest sequence, the number of position embeddings.
      layers: transformer blocks.
      heads: attention heads (they divide `width`).
      width: the embedding width.
      rngs: `nnx.Rngs` for the initialisation (normal, std 0.02; the residual
        projections 0.02 / sqrt(2 layers), as GPT-2).

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from inna_optax.training.models import GPT, count_params
      >>> model = GPT(65, context=128, layers=4, heads=4, width=128, rngs=nnx.Rngs(0))
      >>> count_params(model), model(jnp.zeros((2, 16), jnp.int32)).shape
      (824320, (2, 16, 65))

    References:
      Radford, Wu, Child, Luan, Amodei and Sutskever, `Language Models are
      Unsupervised Multitask Learners
      <https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf>`_,
      2019 (GPT-2).
    """

    def __init__(
        self,
        vocab: int,
        context: int = 128,
        layers: int = 4,
        heads: int = 4,
        width: int = 128,
        *,
        rngs: nnx.Rngs,
    ):
        self.context = context
        self.tokens = nnx.Embed(vocab, width, embedding_init=_GPT_INIT, rngs=rngs)
        self.positions = nnx.Embed(context, width, embedding_init=_GPT_INIT, rngs=rngs)
        self.blocks = nnx.List([Block(width, heads, layers, rngs=rngs) for _ in range(layers)])
        self.ln = nnx.LayerNorm(width, rngs=rngs)
        self.head = nnx.Linear(width, vocab, use_bias=False, kernel_init=_GPT_INIT, rngs=rngs)

    def __call__(self, ids: jax.Array) -> jax.Array:
        """Next-token logits (batch, time, vocab) for token ids (batch, time),
        time <= context."""
        t = ids.shape[-1]
        if t > self.context:
            raise ValueError(
                f"GPT: sequence of {t} tokens is longer than the context {self.context}."
            )
        x = self.tokens(ids) + self.positions(jnp.arange(t))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))
