"""Chapter 10, exercise 2: the knobs of GPT-2 small, counted by hand and by the methods.

GPT-2 small has 12 blocks of width C = 768 and 12 heads. Per block: two LayerNorms of a gain and
a bias each, 4 C numbers; the four matrices' output widths are 3C (c_attn), C (attn.c_proj), 4C
(c_fc) and C (mlp.c_proj), 9 C in all, which is both the count of channel gains and of biases;
one volume per head and one per MLP, 13. The final LayerNorm adds 2 C to the norms.
"""

import smolgpt  # noqa: F401

from smolgpt.methods import MethodSpec, build
from smolgpt.model import GPTConfig, count_params

gpt2 = GPTConfig.preset("gpt2")
L, C, nh = gpt2.n_layer, gpt2.n_embd, gpt2.n_head
by_hand = {"norms": L * 4 * C + 2 * C, "gains": L * 9 * C, "biases": L * 9 * C,
           "heads": L * (nh + 1)}
body = count_params(gpt2, non_embedding=True)
for name, n in by_hand.items():
    own = build(MethodSpec(name), gpt2).n_trainable
    print(f"{name:<7} by hand {n:>7,}, the method says {own:>7,}: {n / body:.4%} of the "
          f"{body:,} body weights")
    assert own == n
