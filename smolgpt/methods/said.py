"""SAID (Aghajanyan et al. 2020): one shared subspace, and one learned scale per tensor.

Li et al.'s offset form gives every weight the same say: theta = theta_0 + sigma * (P a) / sqrt(d).
Aghajanyan et al. ("Intrinsic dimensionality explains the effectiveness of language model
fine-tuning", arXiv 2012.13255) add one number per tensor that scales how far that tensor moves,
so the optimizer can decide that, say, the MLPs should move and the LayerNorms should not. For
every non-embedding tensor t, flattened to D_t numbers:

    theta_t = theta0_t + lambda_t * sigma_t * (P_t a) / sqrt(d)

    a        (d,)   shared by every tensor, trainable key "coef", starts at 0
    lambda   (m,)   one scale per tensor (m tensors), trainable key "scale", starts at 1
    P_t      (D_t, d)  tensor t's own Fastfood projection, regenerated from the method's seed
    theta0_t, sigma_t  the frozen start (a GPT-2 init, or a saved model: `start_from`) and the
                    GPT-2 init scale of each coordinate, exactly as in SubspaceMethod

At the start a = 0, so the model is exactly theta_0, and the gradient of every lambda_t is 0
(it multiplies an offset that is still 0): the scales only begin to move once a has. With
lambda = 1 the map is Li et al.'s offset form with one Fastfood per tensor.

Counting. The trainable non-embedding numbers are d + m: d coefficients and m scales (m = 26 on
a 2-layer GPT-2, 50 on `tiny`, 146 on GPT-2 small). Aghajanyan et al. count the scales inside
their d (d - m coefficients and m scales); here d is always the number of coefficients, and
`n_trainable` says d + m. The two differ only where d is comparable to m.

Tensors smaller than d. P_t must still take all d coefficients (there is one shared a): P_t is
then the first D_t rows of one Fastfood block of size n >= d, so a tensor of 64 LayerNorm gains
reads a through a (64, d) random matrix. (The public SAID code pads a to the tensor's size
instead, which for a tensor smaller than d silently drops coefficients.) The cost per product
is therefore sum_t max(D_t, n) log n: at d much larger than most tensors, m blocks of size n.

Learning rates: a at `coef_lr` like every subspace coefficient, the scales at their own
`scale_lr` (TrainConfig), declared in `lr_groups`. Neither is decayed.
"""

from __future__ import annotations

import math

import numpy as np

from ..model import EMBEDDING_NAMES, GPTConfig
from ..transforms import Fastfood
from .subspace import SubspaceMethod


class SAIDMethod(SubspaceMethod):
    """Trainables: wte, wpe, "coef" (d,) and "scale" (m,), one scale per non-embedding tensor
    in the order of `non_embedding_table`. Offset form only; every other choice is Fastfood's."""

    options = {"d": SubspaceMethod.options["d"]}
    rates = ("coef_lr", "scale_lr")
    refusals = {"per_tensor": "said already gives every tensor its own projection of one shared "
                              "a (and its own scale)",
                "offset": "said is defined around a frozen theta_0 (the scales multiply the "
                          "offset from it)"}

    @classmethod
    def check(cls, spec) -> None:
        """Nothing beyond d, which needs the model to check."""

    @classmethod
    def label(cls, spec) -> str:
        return f"said d={spec.d}"

    def __init__(self, spec, config: GPTConfig):
        super().__init__(spec, config)
        self.n_trainable = spec.d + len(self.table)       # d coefficients + one scale per tensor

    def operators(self):
        """One Fastfood per tensor: (max(D_t, d), d), of which tensor t uses the first D_t rows."""
        if self._ops is None:
            seeds = np.random.SeedSequence([self.spec.seed, 1]).generate_state(len(self.table))
            self._ops = [Fastfood(max(math.prod(shape), self.spec.d), self.spec.d, int(s))
                         for (_, shape), s in zip(self.table, seeds)]
        return self._ops

    def offsets(self, coef):
        """coef (d,) -> u (D,) = sigma * (P a) / sqrt(d), tensor t's slice u_t from its own P_t:
        the offset each tensor would take at lambda_t = 1."""
        u = np.empty(self.D, dtype=coef.dtype)
        for op, (_, shape, off) in zip(self.operators(), self.layout):
            n = math.prod(shape)
            if op.D == n:
                op.matvec(coef, out=u[off:off + n])                  # written in place
            else:                                                    # D_t < d: first D_t rows
                u[off:off + n] = op.matvec(coef)[:n]
        u *= self.base_and_sigma(coef.dtype)[1]
        u *= 1.0 / math.sqrt(self.spec.d)
        return u

    # -- the contract ------------------------------------------------------------------------------
    def init(self, dtype=np.float32):
        trainables = super().init(dtype)                             # wte, wpe, coef = 0
        trainables["scale"] = np.ones(len(self.table), dtype=dtype)
        return trainables

    def trainable_shapes(self) -> dict[str, tuple[int, ...]]:
        return {**super().trainable_shapes(), "scale": (len(self.table),)}

    def theta(self, coef, scale):
        """coef (d,), scale (m,) -> theta (D,) = theta_0 + lambda_t u_t on each tensor's slice."""
        theta = self.offsets(coef)                                   # u (D,)
        for lam, (_, shape, off) in zip(scale, self.layout):
            theta[off:off + math.prod(shape)] *= lam                 # lambda_t u_t
        theta += self.base_and_sigma(coef.dtype)[0]                  # + theta_0
        return theta

    def params(self, trainables):
        theta = self.theta(trainables["coef"], trainables["scale"])
        params = {k: trainables[k] for k in EMBEDDING_NAMES}
        for name, shape, off in self.layout:
            params[name] = theta[off:off + math.prod(shape)].reshape(shape)     # views, no copy
        return params

    def pullback(self, trainables, grads):
        """The map read backwards. With g_t = dL/dtheta_t and u_t the offset at lambda = 1:

            theta_t = theta0_t + lambda_t u_t   ->  dL/dlambda_t = <g_t, u_t>
            u_t = sigma_t (P_t a) / sqrt(d)      ->  dL/da = sum_t P_t^T (sigma_t lambda_t g_t)
                                                              / sqrt(d)

        u is recomputed here (one more forward product per step) rather than kept from params(),
        because the method never holds anything that depends on the trainables.
        """
        coef, scale = trainables["coef"], trainables["scale"]
        g = np.concatenate([grads[name].reshape(-1) for name, _, _ in self.layout])   # (D,)
        u = self.offsets(coef)                                                         # (D,)
        dscale = np.empty_like(scale)                                                  # (m,)
        for t, (_, shape, off) in enumerate(self.layout):
            n = math.prod(shape)
            dscale[t] = g[off:off + n] @ u[off:off + n]              # <g_t, u_t>
            g[off:off + n] *= scale[t]                               # lambda_t g_t
        g *= self.base_and_sigma(coef.dtype)[1]                      # sigma_t lambda_t g_t
        g *= 1.0 / math.sqrt(self.spec.d)
        dcoef = np.zeros_like(coef)                                  # (d,): summed over tensors
        for op, (_, shape, off) in zip(self.operators(), self.layout):
            n = math.prod(shape)
            if op.D == n:
                dcoef += op.rmatvec(g[off:off + n])
            else:                                    # D_t < d: the rows past D_t get zero
                padded = np.zeros(op.D, dtype=g.dtype)
                padded[:n] = g[off:off + n]
                dcoef += op.rmatvec(padded)
        out = {k: grads[k] for k in EMBEDDING_NAMES}
        out["coef"], out["scale"] = dcoef, dscale
        return out

    def lr_groups(self, trainables):
        return {"coef": "coef_lr", "scale": "scale_lr"}

    def log_values(self, trainables) -> dict:
        """|a| and every tensor's scale (m numbers: 26 on a 2-layer model)."""
        return {"coef_norm": float(np.linalg.norm(trainables["coef"])),
                "scale": [float(v) for v in trainables["scale"]]}
