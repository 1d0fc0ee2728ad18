"""Generate text from a GPT-2 parameter dict: temperature and top-k sampling."""

from __future__ import annotations

import numpy as np

from .model import GPTConfig, forward


def generate(params, prompt_ids, config: GPTConfig, max_new_tokens: int = 40,
             temperature: float = 1.0, top_k: int | None = 40, seed: int = 0) -> list[int]:
    """prompt_ids (list of ints, at least one) -> prompt + max_new_tokens sampled ids.

    Each step runs the model on the last block_size tokens, takes the logits at the final
    position, divides them by `temperature` (below 1 sharpens, above 1 flattens), keeps the
    `top_k` largest (None keeps all), and samples from their softmax. temperature 0 is greedy.
    """
    if len(prompt_ids) == 0:
        raise ValueError("generation needs at least one prompt token "
                         "(e.g. the end-of-text id 50256)")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    rng = np.random.default_rng(seed)
    ids = list(prompt_ids)
    for _ in range(max_new_tokens):
        ctx = np.array([ids[-config.block_size:]], dtype=np.int64)       # (1, T)
        logits = forward(params, ctx, config)[0, -1].astype(np.float64)   # (V,)
        if temperature == 0:
            ids.append(int(np.argmax(logits)))
            continue
        logits /= temperature
        if top_k is not None and top_k < logits.size:
            kth = np.partition(logits, -top_k)[-top_k]
            logits[logits < kth] = -np.inf
        p = np.exp(logits - logits.max())
        p /= p.sum()
        ids.append(int(rng.choice(p.size, p=p)))
    return ids


def sample_text(params, config: GPTConfig, prompt: str = "", max_new_tokens: int = 40,
                temperature: float = 1.0, top_k: int | None = 40, seed: int = 0) -> str:
    """Decode a sample with the model's tokenizer (GPT-2's BPE, or bytes). An empty prompt
    starts from the document separator (GPT-2's end-of-text), as every training document does."""
    from .data import SEPARATOR, decode, encode
    start = encode(prompt, config.tokenizer) if prompt else [SEPARATOR[config.tokenizer]]
    ids = generate(params, start, config, max_new_tokens, temperature, top_k, seed)
    return prompt + decode(ids[len(start):], config.tokenizer)
