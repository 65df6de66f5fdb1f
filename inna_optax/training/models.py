"""The models, in Flax NNX, and their registry (:data:`MODELS`): the paper's
Network-in-Network (Lin et al., 2014, CIFAR version, ReLU) for images and a
character-level GPT for text.

Imported by the training code only: the core optimizer does not import Flax.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
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
                    x = dropout(x, self.dropout, sub)
        return jnp.mean(x, axis=(1, 2))


def dropout(x: jax.Array, rate: float, key: jax.Array) -> jax.Array:
    """Inverted dropout: each entry kept with probability ``1 - rate`` and scaled
    by ``1 / (1 - rate)``."""
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


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

    def __call__(self, x: jax.Array, rate: float = 0.0, key: jax.Array | None = None) -> jax.Array:
        """With `key`, the attention weights are dropped at `rate` (nanoGPT's
        ``attn_dropout``); without, XLA's fused attention."""
        b, t, c = x.shape
        q, k, v = (
            z.reshape(b, t, self.heads, c // self.heads) for z in jnp.split(self.qkv(x), 3, -1)
        )
        if key is None:
            y = jax.nn.dot_product_attention(q, k, v, is_causal=True)
        else:
            y = causal_attention(q, k, v, rate, key)
        return self.out(y.reshape(b, t, c))


def causal_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, rate: float, key: jax.Array
) -> jax.Array:
    """softmax(q k^T / sqrt(d)) v over each position's past, the weights dropped at
    `rate` first; q, k, v and the result are (batch, time, heads, d)."""
    t, d = q.shape[1], q.shape[-1]
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.asarray(d, q.dtype))
    scores = jnp.where(jnp.tril(jnp.ones((t, t), bool)), scores, -jnp.inf)
    weights = dropout(jax.nn.softmax(scores, -1), rate, key)
    return jnp.einsum("bhqk,bkhd->bqhd", weights, v)


class Block(nnx.Module):
    """A pre-LayerNorm transformer block: x + attention(LN(x)), then x + MLP(LN(x))
    with a GELU MLP four times as wide; with `keys` (three), dropout on the attention
    weights and on each branch's output."""

    def __init__(self, width: int, heads: int, layers: int, bias: bool = True, *, rngs: nnx.Rngs):
        self.ln1 = nnx.LayerNorm(width, use_bias=bias, rngs=rngs)
        self.attn = CausalSelfAttention(width, heads, layers, rngs=rngs)
        self.ln2 = nnx.LayerNorm(width, use_bias=bias, rngs=rngs)
        self.up = nnx.Linear(width, 4 * width, use_bias=bias, kernel_init=_GPT_INIT, rngs=rngs)
        self.down = nnx.Linear(
            4 * width, width, use_bias=bias, kernel_init=_residual(layers), rngs=rngs
        )

    def __call__(self, x: jax.Array, rate: float = 0.0, keys=None) -> jax.Array:
        a = self.attn(self.ln1(x), rate, None if keys is None else keys[2])
        x = x + (a if keys is None else dropout(a, rate, keys[0]))
        m = self.down(jax.nn.gelu(self.up(self.ln2(x))))
        return x + (m if keys is None else dropout(m, rate, keys[1]))


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
      dropout: dropout rate on the embeddings, on each block's attention weights
        and on its attention and MLP outputs (training calls only; nanoGPT's).
      bias: biases in the LayerNorms and the MLPs (the attention's projections
        have none either way).
      tie_embeddings: the output head is the token embedding's transpose (GPT-2's
        and nanoGPT's), not a matrix of its own.
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
        dropout: float = 0.0,
        *,
        bias: bool = True,
        tie_embeddings: bool = False,
        rngs: nnx.Rngs,
    ):
        self.context, self.dropout = context, dropout
        self.tokens = nnx.Embed(vocab, width, embedding_init=_GPT_INIT, rngs=rngs)
        self.positions = nnx.Embed(context, width, embedding_init=_GPT_INIT, rngs=rngs)
        self.blocks = nnx.List(
            [Block(width, heads, layers, bias, rngs=rngs) for _ in range(layers)]
        )
        self.ln = nnx.LayerNorm(width, use_bias=bias, rngs=rngs)
        self.head = (
            None
            if tie_embeddings
            else nnx.Linear(width, vocab, use_bias=False, kernel_init=_GPT_INIT, rngs=rngs)
        )

    def __call__(
        self, ids: jax.Array, *, train: bool = False, key: jax.Array | None = None
    ) -> jax.Array:
        """Next-token logits (batch, time, vocab) for token ids (batch, time),
        time <= context. With `train=True` and `dropout > 0`, `key` drives the
        dropout masks."""
        t = ids.shape[-1]
        if t > self.context:
            raise ValueError(
                f"GPT: sequence of {t} tokens is longer than the context {self.context}."
            )
        keys = None
        if train and self.dropout > 0:
            if key is None:
                raise ValueError("GPT: training with dropout needs a `key`.")
            keys = jax.random.split(key, 1 + 3 * len(self.blocks))
        x = self.tokens(ids) + self.positions(jnp.arange(t))
        if keys is not None:
            x = dropout(x, self.dropout, keys[0])
        for i, block in enumerate(self.blocks):
            x = block(x, self.dropout, None if keys is None else keys[1 + 3 * i : 4 + 3 * i])
        x = self.ln(x)
        return self.tokens.attend(x) if self.head is None else self.head(x)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Each example's cross-entropy with integer labels, (batch,): a classifier's
    per image, a language model's the mean over the positions of a window."""
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return losses if losses.ndim == 1 else losses.reshape(len(losses), -1).mean(1)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Each example's share of right guesses (argmax), (batch,)."""
    right = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
    return right if right.ndim == 1 else right.reshape(len(right), -1).mean(1)


@dataclasses.dataclass(frozen=True)
class Model:
    """How to build, call and score one model of the registry.

    Every model is called as ``model(x, train=..., key=...)`` (`key` drives
    dropout) and returns logits; its loss is the mean of :attr:`loss` over a batch
    and its evaluation the mean of :attr:`loss` and :attr:`metric` over the test
    (validation) examples.

    Attributes:
      build: ``build(config, data, rngs)``: the module for a
        :class:`~inna_optax.training.Config` and a prepared
        :class:`~inna_optax.training.Split`.
      data: the kind of data set it trains on (a
        :class:`~inna_optax.training.data.DataSet`'s ``kind``).
      fields: the Config fields only this model reads (refused with another).
      decay_mask: the default of ``--decay-mask``: which parameters weight decay
        shrinks.
      help: one line for the documentation.
      loss: per-example loss ``loss(logits, labels)``, (batch,).
      metric: per-example score, (batch,); reported as accuracy.
      evaluated_on: what the evaluation split is called in logs and summaries.
      unit: what one example of a batch holds, for throughput (`unit` per second).
    """

    build: Callable[..., nnx.Module]
    data: str
    fields: tuple[str, ...]
    decay_mask: str
    help: str
    loss: Callable[[jax.Array, jax.Array], jax.Array] = cross_entropy
    metric: Callable[[jax.Array, jax.Array], jax.Array] = accuracy
    evaluated_on: str = "test"
    unit: str = "images"


def _nin(config: Any, data: Any, rngs: nnx.Rngs) -> NiN:
    return NiN(
        data.num_classes,
        data.x_train.shape[-1],
        config.width,
        config.dropout_rate,
        init=config.init,
        norm=config.norm,
        conv=config.conv,
        rngs=rngs,
    )


def _gpt(config: Any, data: Any, rngs: nnx.Rngs) -> GPT:
    return GPT(
        data.num_classes,
        config.context,
        config.layers,
        config.heads,
        config.embed_dim,
        config.dropout_rate,
        bias=config.bias,
        tie_embeddings=config.tie_embeddings,
        rngs=rngs,
    )


#: The registry: name -> :class:`Model`. ``--model``'s choices are its keys.
MODELS: dict[str, Model] = {
    "nin": Model(
        _nin,
        "images",
        fields=("width", "init", "norm", "conv"),
        decay_mask="all",
        help="the paper's Network-in-Network, an image classifier",
    ),
    "gpt": Model(
        _gpt,
        "text",
        fields=("context", "layers", "heads", "embed_dim", "bias", "tie_embeddings"),
        decay_mask="matrices",
        help="a character-level GPT (GPT-2's layout at any size), a language model",
        evaluated_on="validation",
        unit="tokens",
    ),
}
