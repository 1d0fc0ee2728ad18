"""NOLA (Koohpayegani, Navaneet, Nooralinejad, Kolouri and Pirsiavash, ICLR 2024): LoRA's two
factors written as combinations of frozen random matrices; only the coefficients are trained.

LoRA's count is r (m + n) per matrix, so rank 1 is as small as it gets. NOLA keeps the low-rank
update but writes each factor in a random basis regenerated from a seed:

    W = W_frozen + s A B                      s = alpha / r (`--alpha`, `--rank`), as in LoRA
    A = A_0 + sum_{i<k} alpha_i A_i           A_0, A_i (m, r) frozen random; alpha (k,) trained
    B =       sum_{j<l} beta_j  B_j           B_j (r, n) frozen random;       beta (l,) trained

Trainable numbers per matrix: k + l (`--nola-k`, `--nola-l`), whatever the rank and the shapes:
on `tiny`'s 16 weight matrices, 16 (k + l). The rank only sets which functions the update can
reach (every change still passes through r directions of the activations, as LoRA's does).
A random subspace of the parameters (`basis`, `fastfood`) writes the whole weight in a random
basis; NOLA writes the two factors of a low-rank update in one: a low-rank function whose
coefficients live in a random subspace.

Initialisation. The paper starts the update at zero; the authors' GPT-2 code (the setting closest
to this one) does it as written above: every coefficient starts at 0, and A carries a frozen
random offset A_0 (LoRA's random start of A), B none. So s A B = 0 at the start, beta gets a
gradient through A_0 from the first step, and alpha once B has moved (as LoRA's A waits for
its B). Every entry of A_i and B_j is uniform in +-1/sqrt(k) (resp. +-1/sqrt(l)), as in that
code: a coefficient step of size eta then moves each factor entry by about eta / sqrt(3),
whatever k is.

Where smolgpt departs from the paper, which fine-tuned pretrained models:
  - W_frozen is GPT-2's random init (trained from scratch, as LoRA is here), or the weights of
    `--init-from` to fine-tune as the paper does;
  - the update goes on every 2-D non-embedding weight (the paper's GPT-2 runs adapted the
    attention's query and value projections); the embeddings are trained directly;
  - A_0 is smolgpt's LoRA start of A, N(0, 1/m) from the same stream, so NOLA and LoRA of the
    same seed start from the same A (the authors draw it Kaiming-uniform, +-1/sqrt(m));
  - the coefficients have their own learning rate, `nola_lr` (TrainConfig), not decayed;
  - each matrix's basis is drawn from its own NumPy stream of the method seed, regenerated on
    first use and kept in memory (k m r + l r n numbers per matrix; the authors regenerate it in
    every step instead), never saved.

The map and its transpose for one matrix (G = dL/dW from the model's backward):

    W = W_frozen + s A B          ->  dL/dA = s G B^T (m, r),   dL/dB = s A^T G (r, n)
    A = A_0 + sum_i alpha_i A_i   ->  dL/dalpha_i = <A_i, dL/dA>   (k inner products)
    B = sum_j beta_j B_j          ->  dL/dbeta_j  = <B_j, dL/dB>   (l inner products)
"""

from __future__ import annotations

import math

import numpy as np

from ..model import EMBEDDING_NAMES, GPTConfig, non_embedding_table
from .base import (EmbeddingsOnlyMethod, MethodError, option, part_norms, positive_integer,
                   positive_number)
from .lora import LoRAMethod


class NOLAMethod(EmbeddingsOnlyMethod):
    """Trainables: wte, wpe, and for each 2-D non-embedding weight W (m, n) its coefficients
    "nola.<name>.alpha" (k,) and "nola.<name>.beta" (l,). Everything else is frozen at its init."""

    options = dict(
        rank=LoRAMethod.options["rank"], alpha=LoRAMethod.options["alpha"],
        nola_k=option(64, "NOLA: random matrices combined into each matrix's factor A (k "
                      "coefficients)", neutral=True),
        nola_l=option(64, "NOLA: random matrices combined into each matrix's factor B (l "
                      "coefficients)", neutral=True))
    rates = ("nola_lr",)

    @classmethod
    def check(cls, spec) -> None:
        positive_number(spec.alpha, "NOLA scale alpha (--alpha)")
        positive_integer(spec.nola_k, "--nola-k")
        positive_integer(spec.nola_l, "--nola-l")

    @classmethod
    def label(cls, spec) -> str:
        return f"nola k={spec.nola_k} l={spec.nola_l} r={spec.rank}"

    def __init__(self, spec, config: GPTConfig):
        super().__init__(spec, config)
        r, k, l = spec.rank, spec.nola_k, spec.nola_l
        self.targets = [(n, s) for n, s in non_embedding_table(config) if len(s) == 2]
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
            raise MethodError(f"NOLA rank must be a positive integer, got {r!r}")
        limit = min(min(s) for _, s in self.targets)
        if r > limit:
            raise MethodError(f"NOLA rank {r} exceeds min(m, n) = {limit} of the smallest weight "
                              f"matrix: a rank above it adds nothing; use --rank <= {limit}")
        # k random (m, r) matrices span at most m r dimensions: more would add nothing
        for flag, n_basis, size in (("--nola-k", k, min(m * r for _, (m, _) in self.targets)),
                                    ("--nola-l", l, min(r * n for _, (_, n) in self.targets))):
            if n_basis > size:
                raise MethodError(f"{flag} {n_basis} exceeds the {size} entries of the smallest "
                                  f"factor at rank {r}: more random matrices than entries add "
                                  f"nothing; use {flag} <= {size} or a higher --rank")
        self.scale = spec.alpha / r
        self.n_trainable = len(self.targets) * (k + l)
        self.needed_grads = frozenset(EMBEDDING_NAMES) | {name for name, _ in self.targets}
        self._frozen = None

    def frozen(self, dtype):
        """[(A_0 (m, r), A_basis (k, m r), B_basis (l, r n))] per target: regenerated from the
        seed on first use (drawn in float64), kept per dtype. Row i of A_basis is A_i flattened."""
        if self._frozen is None or self._frozen[0][0].dtype != dtype:
            r, k, l = self.spec.rank, self.spec.nola_k, self.spec.nola_l
            self._frozen = []
            for i, (_, (m, n)) in enumerate(self.targets):
                rng = np.random.default_rng([self.spec.seed, 2, i])    # 2: LoRA's A, the same
                A0 = rng.standard_normal((m, r)) / np.sqrt(m)
                rng = np.random.default_rng([self.spec.seed, 4, i])    # 4: NOLA's bases
                A_basis = rng.uniform(-1.0, 1.0, (k, m * r)) / math.sqrt(k)
                B_basis = rng.uniform(-1.0, 1.0, (l, r * n)) / math.sqrt(l)
                self._frozen.append(tuple(x.astype(dtype) for x in (A0, A_basis, B_basis)))
        return self._frozen

    def factors(self, trainables, name, i, shape):
        """A (m, r) = A_0 + sum_i alpha_i A_i and B (r, n) = sum_j beta_j B_j of target i."""
        m, n = shape
        A0, A_basis, B_basis = self.frozen(trainables["wte.weight"].dtype)[i]
        A = A0 + (trainables[f"nola.{name}.alpha"] @ A_basis).reshape(m, -1)   # (k,)(k, m r)
        B = (trainables[f"nola.{name}.beta"] @ B_basis).reshape(-1, n)         # (l,)(l, r n)
        return A, B

    # -- the contract ------------------------------------------------------------------------------
    def init(self, dtype=np.float32):
        trainables = super().init(dtype)
        for name, _ in self.targets:
            trainables[f"nola.{name}.alpha"] = np.zeros(self.spec.nola_k, dtype=dtype)
            trainables[f"nola.{name}.beta"] = np.zeros(self.spec.nola_l, dtype=dtype)
        return trainables

    def trainable_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = super().trainable_shapes()
        for name, _ in self.targets:
            shapes[f"nola.{name}.alpha"] = (self.spec.nola_k,)
            shapes[f"nola.{name}.beta"] = (self.spec.nola_l,)
        return shapes

    def params(self, trainables):
        params = super().params({k: trainables[k] for k in EMBEDDING_NAMES})
        for i, (name, shape) in enumerate(self.targets):
            A, B = self.factors(trainables, name, i, shape)
            params[name] = params[name] + self.scale * (A @ B)        # (m, n), a new array
        return params

    def pullback(self, trainables, grads):
        """grads keyed like params -> grads keyed like trainables (dalpha (k,), dbeta (l,)).
        A and B are recomputed (two small products per matrix) rather than kept from params(),
        because the method never holds anything that depends on the trainables."""
        out = {k: grads[k] for k in EMBEDDING_NAMES}
        frozen = self.frozen(trainables["wte.weight"].dtype)
        for i, (name, shape) in enumerate(self.targets):
            A, B = self.factors(trainables, name, i, shape)
            _, A_basis, B_basis = frozen[i]
            G = grads[name]                                           # (m, n) dL/dW
            dA = self.scale * (G @ B.T)                               # (m, r)
            dB = self.scale * (A.T @ G)                               # (r, n)
            out[f"nola.{name}.alpha"] = A_basis @ dA.reshape(-1)      # (k,): <A_i, dL/dA>
            out[f"nola.{name}.beta"] = B_basis @ dB.reshape(-1)       # (l,): <B_j, dL/dB>
        return out

    def lr_groups(self, trainables):
        """Every coefficient at `nola_lr`; built from the targets, so it answers for {} too."""
        return {f"nola.{name}.{c}": "nola_lr" for name, _ in self.targets
                for c in ("alpha", "beta")}

    def log_values(self, trainables) -> dict:
        """|alpha| and |beta| over every matrix (both start at 0; beta moves first)."""
        return part_norms(trainables, "nola", [name for name, _ in self.targets],
                          ("alpha", "beta"))
