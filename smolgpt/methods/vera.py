"""VeRA (Kopiczko, Blankevoort and Asano, ICLR 2024): one frozen random low-rank pair shared by
every weight matrix, and two trained vectors per matrix.

LoRA trains both factors of every update. VeRA draws the factors once, at random, freezes them
and shares them between all matrices; what each matrix trains is a scaling of that shared pair.
In the paper's (out, in) layout, for a matrix of input width m and output width n:

    h = W_0 x + Lambda_b B Lambda_d A x      A (r, m), B (n, r) frozen, shared;
                                             Lambda_d = diag(d), d (r,); Lambda_b = diag(b), b (n,)

smolgpt keeps weights in (in, out) layout and computes x W, so the same update transposed is

    W = W_frozen + A diag(d) B diag(b)       A (m, r), B (r, n): the paper's A^T and B^T

d scales the r directions of the shared pair, b scales each output. Trainable numbers per
matrix: r + n (rank plus output width), against LoRA's r (m + n). On every 2-D non-embedding
weight of `tiny` (4 layers x 128) that is 4,608 + 16 r.

Different shapes. The matrices of a GPT-2 block have two input widths (C, 4C) and three output
widths (C, 3C, 4C). As the paper does, one pair of the largest shape is drawn, A (m_max, r) and
B (r, n_max), and each matrix uses its top-left corner: A[:m] and B[:, :n]. Matrices of the same
input width therefore read the same rows of A (the Q, K and V blocks of c_attn read different
columns of B, since they are one (C, 3C) matrix here).

Initialisation, the paper's: A and B Kaiming-uniform, each entry uniform in
+-1/sqrt(fan_in) as PyTorch draws a Linear layer's weight, fan_in the larger size of the pair
(m_max for A, r for B); b = 0, so the model starts exactly at W_frozen, and every entry of d at
d_init = 0.1 (`--vera-d-init`). No scale like LoRA's alpha / r: the vectors learn it.

Where smolgpt departs from the paper, which fine-tuned pretrained models:
  - W_frozen is GPT-2's random init (trained from scratch, as LoRA is here), or the weights of
    `--init-from` to fine-tune as the paper does;
  - the update goes on every 2-D non-embedding weight (attention c_attn and c_proj, MLP c_fc and
    c_proj), where the paper adapted the attention's query and value projections (and the
    classifier head, trained directly); the embeddings are trained directly, as in every method;
  - the vectors have their own learning rate, `vera_lr` (TrainConfig), not decayed;
  - A and B are regenerated from the method seed (NumPy's generator) and never saved.

The map and its transpose for one matrix (G = dL/dW from the model's backward, M = A diag(d) B):

    W = W_frozen + M diag(b)    ->  dL/db_j = sum_i G_ij M_ij
                                 ->  dL/dd_k = sum_ij G_ij A_ik B_kj b_j
With H = A^T G (r, n), both are sums over the small (r, n) array H * B:
    dL/db = d^T (H * B)   (n,)          dL/dd = (H * B) b   (r,)
"""

from __future__ import annotations

import math

import numpy as np

from ..model import EMBEDDING_NAMES, GPTConfig, non_embedding_table
from .base import EmbeddingsOnlyMethod, MethodError, option, part_norms
from .lora import LoRAMethod


class VeRAMethod(EmbeddingsOnlyMethod):
    """Trainables: wte, wpe, and for each 2-D non-embedding weight W (m, n) its vectors
    "vera.<name>.d" (r,) and "vera.<name>.b" (n,). Everything else is frozen at its init."""

    options = dict(
        rank=LoRAMethod.options["rank"],
        vera_d_init=option(0.1, "VeRA: the value every entry of each matrix's vector d starts "
                           "at (b starts at 0)", neutral=True))
    rates = ("vera_lr",)
    refusals = {"alpha": "vera has no scale alpha: the size of its update is learned in the "
                         "vectors d and b (set where d starts with --vera-d-init)"}

    @classmethod
    def check(cls, spec) -> None:
        v = spec.vera_d_init
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v == 0:
            # with d = 0 and b = 0 the update is 0 and so are both vectors' gradients
            raise MethodError(f"--vera-d-init must be a finite non-zero number (b starts at 0, so "
                              f"d = 0 would leave both vectors without gradient), got {v!r}")

    @classmethod
    def label(cls, spec) -> str:
        extra = "" if spec.vera_d_init == 0.1 else f" d_init={spec.vera_d_init:g}"
        return f"vera r={spec.rank}{extra}"

    def __init__(self, spec, config: GPTConfig):
        super().__init__(spec, config)
        r = spec.rank
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
            raise MethodError(f"VeRA rank must be a positive integer, got {r!r}")
        # No upper limit: a rank above a matrix's width adds no rank to its update, but it is
        # still r more random directions for d to weigh (the paper uses r up to 1024).
        self.targets = [(n, s) for n, s in non_embedding_table(config) if len(s) == 2]
        self.m_max = max(m for _, (m, _) in self.targets)
        self.n_max = max(n for _, (_, n) in self.targets)
        self.n_trainable = sum(r + n for _, (_, n) in self.targets)
        self.needed_grads = frozenset(EMBEDDING_NAMES) | {name for name, _ in self.targets}
        self._pair = None

    def shared_pair(self, dtype):
        """A (m_max, r) and B (r, n_max), the one frozen pair: regenerated from the seed on first
        use (drawn in float64, so float32 and float64 runs share it to rounding), kept per dtype."""
        if self._pair is None or self._pair[0].dtype != dtype:
            r = self.spec.rank
            rng = np.random.default_rng([self.spec.seed, 3])          # 3: VeRA's stream
            A = rng.uniform(-1.0, 1.0, (self.m_max, r)) / np.sqrt(self.m_max)   # fan_in m_max
            B = rng.uniform(-1.0, 1.0, (r, self.n_max)) / np.sqrt(r)            # fan_in r
            self._pair = (A.astype(dtype), B.astype(dtype))
        return self._pair

    def pair_for(self, shape, dtype):
        """The corner of the shared pair a matrix of `shape` (m, n) uses: A[:m] (m, r),
        B[:, :n] (r, n) (views, no copy)."""
        A, B = self.shared_pair(dtype)
        m, n = shape
        return A[:m], B[:, :n]

    # -- the contract ------------------------------------------------------------------------------
    def init(self, dtype=np.float32):
        trainables = super().init(dtype)
        for name, (_, n) in self.targets:
            trainables[f"vera.{name}.d"] = np.full(self.spec.rank, self.spec.vera_d_init, dtype)
            trainables[f"vera.{name}.b"] = np.zeros(n, dtype=dtype)
        return trainables

    def trainable_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = super().trainable_shapes()
        for name, (_, n) in self.targets:
            shapes[f"vera.{name}.d"], shapes[f"vera.{name}.b"] = (self.spec.rank,), (n,)
        return shapes

    def params(self, trainables):
        params = super().params({k: trainables[k] for k in EMBEDDING_NAMES})
        dtype = trainables["wte.weight"].dtype
        for name, shape in self.targets:
            d, b = trainables[f"vera.{name}.d"], trainables[f"vera.{name}.b"]
            A, B = self.pair_for(shape, dtype)                        # (m, r), (r, n)
            delta = (A * d) @ B                                       # A diag(d) B (m, n)
            delta *= b                                                # ... diag(b): scales columns
            delta += params[name]                                     # + W_frozen, a new array
            params[name] = delta
        return params

    def pullback(self, trainables, grads):
        """grads keyed like params -> grads keyed like trainables (dd (r,), db (n,))."""
        out = {k: grads[k] for k in EMBEDDING_NAMES}
        dtype = trainables["wte.weight"].dtype
        for name, shape in self.targets:
            d, b = trainables[f"vera.{name}.d"], trainables[f"vera.{name}.b"]
            A, B = self.pair_for(shape, dtype)                        # (m, r), (r, n)
            G = grads[name]                                           # (m, n) dL/dW
            HB = (A.T @ G) * B                                        # (r, n): H * B, H = A^T G
            out[f"vera.{name}.d"] = HB @ b                            # (r,)
            out[f"vera.{name}.b"] = d @ HB                            # (n,)
        return out

    def lr_groups(self, trainables):
        """Every vector at `vera_lr`; built from the targets, so it answers for {} too."""
        return {f"vera.{name}.{v}": "vera_lr" for name, _ in self.targets for v in ("d", "b")}

    def log_values(self, trainables) -> dict:
        """|d| and |b| over every matrix: b leaves 0 first; |d| starts at
        d_init sqrt(r * matrices)."""
        return part_norms(trainables, "vera", [name for name, _ in self.targets], ("d", "b"))
