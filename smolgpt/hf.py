"""Hugging Face GPT-2 in and out: `export_hf` writes a directory transformers loads as it is,
`import_hf` turns one (or a Hub id) into a smolgpt checkpoint.

smolgpt's parameters already carry the names of Hugging Face's GPT-2 state dict without its
`transformer.` prefix, and its weights are stored (in, out) as HF's `Conv1D` stores them, so the
weights cross unchanged: export adds the prefix, import takes it off. An exported directory holds

    config.json          GPT2Config's fields for this model (tanh-GELU, eps 1e-5, tied head)
    model.safetensors    the materialised parameters, float32. Every method exports this way: a
                         subspace or LoRA model is written as the full weights its trainables make
    vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json
                         GPT-2's BPE, generated from tiktoken's `gpt2` encoding (`tokenizer_files`)
    README.md            a model card saying what trained it

so that `GPT2LMHeadModel.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)` need
nothing else. Nothing here imports torch or transformers: arrays go through safetensors' NumPy
API, and the tokenizer files are built from tiktoken's tables.

    export_hf("runs/run/checkpoint.npz", "export/run")          # -> Path("export/run")
    import_hf("export/run", "runs/imported/checkpoint.npz")     # a local HF directory
    import_hf("gpt2", "runs/gpt2/checkpoint.npz")               # a Hub id (needs the network)

Every problem a user can fix is raised as `HFError` (a ValueError) with a one-line message saying
what was wrong and what to do; `UnsupportedModel`, a kind of HFError, is a model smolgpt's GPT-2
cannot hold.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

from . import checkpoint as ckpt
from .data import EOT, get_encoding
from .files import write_atomic
from .methods import MethodSpec, build
from .model import ConfigError, GPTConfig, count_params, param_table

PREFIX = "transformer."              # HF's GPT2LMHeadModel keeps the body under this name
GPT2_VOCAB = 50257                   # tiktoken's gpt2: 256 bytes + 50000 merges + <|endoftext|>
EOT_TEXT = "<|endoftext|>"
LAYER_NORM_EPS = 1e-5                # smolgpt.layers.layernorm_forward's default
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")   # HF's names for 0.5 x (1 + tanh(...)) GELU
HF_DEFAULTS = {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12,
               "n_head": 12}         # GPT2Config's own defaults, for config.json files that omit them


class HFError(ValueError):
    """A model that cannot cross between smolgpt and Hugging Face; the message says what to do."""


class UnsupportedModel(HFError):
    """A Hugging Face model with an architecture or shape smolgpt's GPT-2 does not have."""


# ----------------------------------------------------------------------------------------------
# The tokenizer: tiktoken's ranks -> GPT-2's vocab.json and merges.txt
#
# tiktoken keeps GPT-2's BPE as one table, `mergeable_ranks`: token bytes -> rank, and the rank
# is the token id. Hugging Face keeps it in two files:
#   vocab.json  token -> id, with each token's bytes spelled through GPT-2's byte-to-unicode table
#               (every byte gets a printable character, so a token is a plain JSON string);
#   merges.txt  the merge rules "left right", one per line, highest priority first.
# They hold the same information. BPE repeatedly merges the adjacent pair whose union has the
# lowest rank, so a token of rank r >= 256 was made by merging two tokens of lower rank, and which
# two is found by running BPE on its bytes allowing only ranks below r: the pieces left when no
# more merges apply are its two halves. Rule number i (0-based) is the merge that makes token 256+i.


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's table byte -> printable character, as its vocab.json spells tokens.

    The 188 bytes that are visible Latin-1 characters ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
    themselves; the other 68 (control characters, space, soft hyphen, ...) get chr(256 + n) in
    byte order, so a space is 'Ġ' (chr(288)) and a newline 'Ċ' (chr(266)).
    """
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
               *range(ord("®"), ord("ÿ") + 1)]
    table, n = {}, 0
    for b in range(256):
        if b in visible:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return table


def split_token(token: bytes, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The two lower-ranked tokens BPE joins last to make `token` (rank >= 256).

    Run BPE on the token's bytes with only the merges ranked below it: at each step merge the
    adjacent pair whose union has the lowest rank. Two pieces remain: the last merge's halves.
    """
    limit = ranks[token]
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best, where = limit, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1], limit)
            if r < best:
                best, where = r, i
        if where < 0:
            raise HFError(f"token {token!r} (rank {limit}) cannot be built by BPE from lower ranks: "
                          f"the tiktoken encoding is not GPT-2's; use tiktoken's 'gpt2'")
        parts[where:where + 2] = [parts[where] + parts[where + 1]]
    return parts[0], parts[1]


def tokenizer_files(model_max_length: int) -> dict[str, str]:
    """File name -> text of the four files AutoTokenizer reads, from tiktoken's `gpt2`."""
    enc = get_encoding()
    ranks = enc._mergeable_ranks                               # bytes -> id, 50256 entries
    if len(ranks) != GPT2_VOCAB - 1 or enc.n_vocab != GPT2_VOCAB:
        raise HFError(f"tiktoken's encoding has {enc.n_vocab} tokens, GPT-2's has {GPT2_VOCAB}: "
                      f"use tiktoken's 'gpt2' encoding")
    spell = byte_to_unicode()

    def word(b: bytes) -> str:
        return "".join(spell[x] for x in b)

    by_rank = sorted(ranks.items(), key=lambda kv: kv[1])
    vocab = {word(b): r for b, r in by_rank}
    vocab[EOT_TEXT] = EOT
    merges = ["#version: 0.2"]                  # HF skips the first line: it is a header
    for b, r in by_rank:
        if r >= 256:
            left, right = split_token(b, ranks)
            merges.append(f"{word(left)} {word(right)}")
    special = {"bos_token": EOT_TEXT, "eos_token": EOT_TEXT, "unk_token": EOT_TEXT}
    config = {"tokenizer_class": "GPT2Tokenizer", **special, "add_prefix_space": False,
              "add_bos_token": False, "errors": "replace", "model_max_length": model_max_length,
              "clean_up_tokenization_spaces": False}
    return {"vocab.json": json.dumps(vocab, ensure_ascii=False),
            "merges.txt": "\n".join(merges) + "\n",
            "tokenizer_config.json": json.dumps(config, indent=2),
            "special_tokens_map.json": json.dumps(special, indent=2)}


_TOKENIZER_CACHE: dict[str, str] = {}


def _tokenizer_files_cached(model_max_length: int) -> dict[str, str]:
    """tokenizer_files, with the two large files built once per process (about 2 s)."""
    if not _TOKENIZER_CACHE:
        _TOKENIZER_CACHE.update(tokenizer_files(model_max_length))
    files = dict(_TOKENIZER_CACHE)
    config = json.loads(files["tokenizer_config.json"])
    config["model_max_length"] = model_max_length
    files["tokenizer_config.json"] = json.dumps(config, indent=2)
    return files


# ----------------------------------------------------------------------------------------------
# Configs and state dicts, both ways


def hf_config(config: GPTConfig) -> dict:
    """A GPTConfig -> the fields of transformers' GPT2Config (config.json) for the same model.

    smolgpt has no dropout, so every dropout is 0; its MLP is 4C wide (n_inner None means 4C in
    HF), its GELU the tanh one (HF's gelu_new), its LayerNorms use eps 1e-5, its attention
    scores are scaled by 1/sqrt(hs) only, and its head is tied to wte.
    """
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": config.vocab_size, "n_positions": config.block_size,
        "n_ctx": config.block_size, "n_embd": config.n_embd, "n_layer": config.n_layer,
        "n_head": config.n_head, "n_inner": None, "activation_function": "gelu_new",
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
        "layer_norm_epsilon": LAYER_NORM_EPS, "initializer_range": 0.02,
        "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False, "add_cross_attention": False,
        "tie_word_embeddings": True, "bos_token_id": EOT, "eos_token_id": EOT,
        "torch_dtype": "float32", "use_cache": True,
    }


def config_from_hf(cfg: dict, where: str = "config.json") -> GPTConfig:
    """A GPT2Config dict -> GPTConfig, or UnsupportedModel naming the first field smolgpt lacks.

    `reorder_and_upcast_attn` is accepted: it only makes HF compute attention in float32 under
    mixed precision, the function is the same, and smolgpt computes in float32 anyway.
    """
    def refuse(what: str) -> UnsupportedModel:
        return UnsupportedModel(f"{where}: {what}; smolgpt holds only the original GPT-2 "
                                f"architecture, so this model cannot be imported")

    if not isinstance(cfg, dict):
        raise HFError(f"{where} holds a JSON {type(cfg).__name__}, not an object of GPT2Config's "
                      f"fields: download or save the model again")
    # every field read below, with the JSON types transformers writes for it
    kinds = {**{k: (int,) for k in HF_DEFAULTS}, "n_inner": (int, type(None)),
             "activation_function": (str,), "layer_norm_epsilon": (int, float),
             "scale_attn_weights": (bool,), "scale_attn_by_inverse_layer_idx": (bool,),
             "add_cross_attention": (bool,), "tie_word_embeddings": (bool,)}
    for key, types in kinds.items():
        v = cfg.get(key)
        if key in cfg and (not isinstance(v, types) or (isinstance(v, bool) and bool not in types)):
            want = " or ".join("null" if t is type(None) else {"int": "an integer", "float":
                               "a number", "str": "a string", "bool": "true or false"}[t.__name__]
                               for t in types)
            raise HFError(f"{where}: {key} is {json.dumps(v)[:40]}, expected {want}: the file "
                          f"was edited or is damaged; download or save the model again")

    model_type = cfg.get("model_type")
    if model_type != "gpt2":
        raise refuse(f"model_type is {model_type!r}, not 'gpt2'")
    sizes = {k: cfg.get(k, default) for k, default in HF_DEFAULTS.items()}
    C = sizes["n_embd"]
    if cfg.get("n_inner") not in (None, 4 * C):
        raise refuse(f"the MLP is n_inner={cfg['n_inner']} wide, smolgpt's is 4 * n_embd = {4 * C}")
    act = cfg.get("activation_function", "gelu_new")
    if act not in TANH_GELUS:
        raise refuse(f"activation_function is {act!r}, smolgpt has only the tanh GELU "
                     f"({' / '.join(TANH_GELUS)})")
    eps = cfg.get("layer_norm_epsilon", LAYER_NORM_EPS)
    if not math.isclose(eps, LAYER_NORM_EPS, rel_tol=1e-9):
        raise refuse(f"layer_norm_epsilon is {eps}, smolgpt's LayerNorm uses {LAYER_NORM_EPS}")
    if not cfg.get("scale_attn_weights", True):
        raise refuse("scale_attn_weights is false (attention scores not divided by sqrt(hs))")
    if cfg.get("scale_attn_by_inverse_layer_idx", False):
        raise refuse("scale_attn_by_inverse_layer_idx is true (scores also divided by the "
                     "layer number)")
    if cfg.get("add_cross_attention", False):
        raise refuse("add_cross_attention is true (an encoder-decoder block)")
    if sizes["vocab_size"] != GPT2_VOCAB:
        raise refuse(f"vocab_size is {sizes['vocab_size']}, smolgpt reads and writes text with "
                     f"GPT-2's tokenizer of {GPT2_VOCAB} tokens")
    try:
        return GPTConfig(n_layer=sizes["n_layer"], n_head=sizes["n_head"], n_embd=C,
                         block_size=sizes["n_positions"], vocab_size=sizes["vocab_size"])
    except ConfigError as e:
        raise refuse(str(e)) from e


def to_hf_state_dict(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """smolgpt params -> HF GPT2LMHeadModel names (`transformer.` + name), float32, contiguous.

    No `lm_head.weight`: the head is tied, and HF ties it to wte on load (as its own
    save_pretrained leaves it out). No transposes: both sides store Conv1D weights (in, out).
    """
    return {PREFIX + k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}


def _is_attention_buffer(name: str) -> bool:
    """HF GPT-2's causal-mask buffers `h.N.attn.bias` / `h.N.attn.masked_bias`: not weights."""
    return name.endswith(".attn.bias") or name.endswith(".attn.masked_bias")


def from_hf_state_dict(state: dict[str, np.ndarray], config: GPTConfig, tied: bool = True,
                       where: str = "the weights") -> dict[str, np.ndarray]:
    """HF GPT-2 tensors (with or without the `transformer.` prefix) -> smolgpt params, float32.

    The attention-mask buffers are dropped, and a stored `lm_head.weight` is dropped when it
    equals wte (a tied head saved anyway). Anything else that is not exactly smolgpt's table of
    names and shapes is refused, naming the first tensor that differs.
    """
    body, head = {}, None
    for name, value in state.items():
        short = name[len(PREFIX):] if name.startswith(PREFIX) else name
        if short == "lm_head.weight":
            head = value
        elif not _is_attention_buffer(short):
            body[short] = value
    table = param_table(config)
    for name, shape in table:
        if name not in body:
            raise UnsupportedModel(f"{where} have no tensor {name} (nor {PREFIX}{name}), which "
                                   f"GPT-2 needs: the file is incomplete or not a GPT-2")
        if tuple(body[name].shape) != shape:
            raise UnsupportedModel(f"{where}: {name} has shape {tuple(body[name].shape)}, this "
                                   f"config's GPT-2 needs {shape}: the weights and config.json "
                                   f"disagree, or the layout is not HF's Conv1D (in, out)")
    extra = sorted(set(body) - {n for n, _ in table})
    if extra:
        raise UnsupportedModel(f"{where} hold {extra[0]}, which smolgpt's GPT-2 does not have "
                               f"({len(extra)} such tensor(s)): a modified architecture cannot "
                               f"be imported")
    params = {name: np.array(body[name], dtype=np.float32) for name, _ in table}   # own copies
    if head is not None and (head.shape != params["wte.weight"].shape
                             or not np.array_equal(head.astype(np.float32), params["wte.weight"])):
        raise UnsupportedModel(f"{where}: lm_head.weight differs from wte.weight (an untied "
                               f"output head); smolgpt's head is tied to the token embedding")
    if head is None and not tied:
        raise UnsupportedModel(f"{where}: config.json says the head is not tied "
                               f"(tie_word_embeddings false) but there is no lm_head.weight")
    return params


# ----------------------------------------------------------------------------------------------
# Reading safetensors files


def _read_bf16_file(path: Path) -> dict[str, np.ndarray]:
    """A safetensors file holding bfloat16 tensors, which NumPy has no dtype for, as float32.

    The format is an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
    data_offsets}}, then the raw bytes. A bfloat16 is the top half of a float32, so shifting
    its 16 bits up by 16 gives the float32 of the same value, exactly.
    """
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    kinds = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in kinds:
            raise HFError(f"{path}: tensor {name} is {info['dtype']}, not a float type: these "
                          f"are not GPT-2 weights smolgpt can read")
        begin, end = info["data_offsets"]
        a = np.frombuffer(raw, dtype=kinds[info["dtype"]], count=(end - begin) //
                          np.dtype(kinds[info["dtype"]]).itemsize, offset=8 + n + begin)
        if info["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.reshape(info["shape"]).astype(np.float32)
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:160]}" if text else type(e).__name__


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """One safetensors file -> {name: array}, through safetensors' NumPy API."""
    from safetensors.numpy import load_file
    try:
        try:
            return load_file(path)
        except TypeError as e:                 # numpy has no such dtype: bfloat16
            if "bfloat16" not in str(e):
                raise
            return _read_bf16_file(path)
    except HFError:
        raise
    except Exception as e:                     # safetensors' own errors: truncated, not one
        raise HFError(f"{path} is not a readable safetensors file ({_first_line(e)}): "
                      f"download or save it again") from None


def read_weights(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of an HF model directory: model.safetensors, or the shards its index names."""
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return _read_safetensors(single)
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_bytes())["weight_map"].values()))
            if not all(isinstance(name, str) for name in shards):
                raise TypeError("a shard name is not a string")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            raise HFError(f"{index} is not a safetensors index (a JSON object whose "
                          f"'weight_map' maps tensor names to shard files; {_first_line(e)}): "
                          f"download or save the model again") from None
        state = {}
        for shard in shards:
            state.update(_read_safetensors(folder / shard))
        return state
    if (folder / "pytorch_model.bin").is_file():
        raise HFError(f"{folder} has only pytorch_model.bin (torch's pickle format), smolgpt "
                      f"reads safetensors: re-save it with transformers, "
                      f"GPT2LMHeadModel.from_pretrained(DIR).save_pretrained(NEW_DIR)")
    raise HFError(f"{folder} has no model.safetensors: pass a Hugging Face model directory "
                  f"(config.json and model.safetensors)")


def _resolve(source: str) -> tuple[Path, str | None]:
    """A local model directory, or a Hub id downloaded into HF's cache -> (folder, revision)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path, None
    if path.exists():
        raise HFError(f"{source} is a file: pass the directory that holds config.json and "
                      f"model.safetensors")
    looks_local = (source.startswith((".", "/", "~")) or source.count("/") > 1
                   or (path.parent != Path(".") and path.parent.is_dir()))
    if looks_local:                                     # a path that is not there, not a Hub id
        raise HFError(f"no directory {source}: pass a Hugging Face GPT-2 directory or a Hub id "
                      f"such as gpt2")
    try:
        from huggingface_hub import snapshot_download
        folder = snapshot_download(source, allow_patterns=[
            "config.json", "model.safetensors", "model.safetensors.index.json",
            "model-*.safetensors"])
    except Exception as e:       # offline mode, no network, unknown repository, ...
        from huggingface_hub import constants
        if constants.HF_HUB_OFFLINE:
            raise HFError(f"{source!r} is not a local directory and Hub downloads are off "
                          f"(HF_HUB_OFFLINE=1) with no cached copy: pass a directory holding "
                          f"config.json and model.safetensors, or unset HF_HUB_OFFLINE") from e
        raise HFError(f"could not fetch {source!r} from the Hugging Face Hub ({_first_line(e)});"
                      f" without network, pass a local directory holding config.json and "
                      f"model.safetensors") from e
    return Path(folder), Path(folder).name


# ----------------------------------------------------------------------------------------------
# Export and import


def model_card(meta: dict, config: GPTConfig, spec: MethodSpec) -> str:
    """README.md of an exported model: what it is, what trained it, how to load it."""
    method = build(spec, config)
    total = count_params(config)
    n_embedding = total - count_params(config, non_embedding=True)
    train = meta.get("train") or {}
    step = meta.get("step", 0)
    tokens = step * train.get("batch_size", 0) * config.block_size
    curve = meta.get("val_curve") or []
    if curve:
        s, _, loss = curve[-1]
        held_out = (f"{loss:.4f} nats/token at step {s} (mean over {train.get('eval_windows')} "
                    f"fixed held-out windows of {config.block_size} tokens; `smolgpt eval` "
                    f"measures the whole held-out split)")
    else:
        held_out = "not measured (run `smolgpt eval CHECKPOINT`)"
    origin = meta.get("imported_from")
    lines = [
        "---", "library_name: transformers", "tags: [gpt2, smolgpt]", "---", "",
        f"# smolgpt GPT-2: {spec.label()}", "",
        ("A GPT-2 " + (f"imported from {origin} into" if origin else "trained with") +
         " smolgpt (a pure-NumPy GPT-2 with hand-written backprop, trained on CPU) and exported "
         "to Hugging Face's format. The weights are float32; the output head is tied to the "
         "token embedding."), "",
        f"- architecture: GPT-2, n_layer={config.n_layer}, n_head={config.n_head}, "
        f"n_embd={config.n_embd}, context {config.block_size} tokens, vocabulary "
        f"{config.vocab_size} (GPT-2's BPE); {total:,} parameters",
        f"- method: {spec.label()} ({json.dumps(spec.to_dict())}): {method.n_trainable:,} "
        f"trainable non-embedding parameters, plus the {n_embedding:,} embedding parameters "
        f"(wte, wpe) trained directly; exported as the full weights the trainables produce",
        f"- training: {step:,} steps, {tokens:,} tokens"
        + (f" (batch {train.get('batch_size')} x {config.block_size}, lr {train.get('lr')})"
           if train and step else ""),
        f"- held-out loss: {held_out}",
    ]
    if origin:
        lines.append(f"- imported from: {origin}")
    lines += ["", "```python",
              "from transformers import AutoTokenizer, GPT2LMHeadModel",
              "tok = AutoTokenizer.from_pretrained(DIR)",
              "model = GPT2LMHeadModel.from_pretrained(DIR)",
              "ids = tok(\"The meaning of life is\", return_tensors=\"pt\").input_ids",
              "print(tok.decode(model.generate(ids, max_new_tokens=20, do_sample=True)[0]))",
              "```", ""]
    return "\n".join(lines)


def _earlier_export(out: Path) -> tuple[bool, dict[str, str]]:
    """(whether out/model.safetensors was written by smolgpt, {name: sha256} of the other files
    that export wrote beside it), read from that file's metadata; (False, {}) if it is not."""
    path = out / "model.safetensors"
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if not 2 <= n <= min(path.stat().st_size - 8, 100 << 20):
            return False, {}
        meta = json.loads(f.read(n)).get("__metadata__") or {}
    if meta.get("written_by") != EXPORT_MARK:
        return False, {}
    files = json.loads(meta.get("smolgpt_files", "{}"))
    return True, files if isinstance(files, dict) else {}


EXPORT_MARK = "smolgpt"        # model.safetensors' metadata "written_by", beside "format": "pt"


def export_hf(checkpoint_path, out_dir, force: bool = False) -> Path:
    """A smolgpt checkpoint (any method) -> a Hugging Face GPT-2 directory; returns out_dir.

    Each file is written atomically (`files.write_atomic`), the weights first, so config.json
    is never newer than the weights beside it. Other files already in out_dir are left alone, and
    so is a file of a name export writes unless an earlier smolgpt export wrote it (the weights'
    metadata lists the sha256 of every file written beside them) or it already holds exactly
    what would be written: otherwise the export is refused (files.WouldReplace), or with force
    the file is replaced.
    """
    import hashlib

    from safetensors.numpy import save

    from .files import refuse_strangers, sha256_of
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise HFError(f"{out} is a file: pass a directory to export into")
    trainables, _, meta = ckpt.load(checkpoint_path)
    config, spec = GPTConfig(**meta["model"]), MethodSpec(**meta["method"])
    if config.tokenizer != "gpt2" or config.vocab_size != GPT2_VOCAB:
        what = ("is a byte-level model (tokenizer 'bytes', --preset tiny-bytes)"
                if config.tokenizer == "bytes" else f"has vocab_size={config.vocab_size}")
        raise HFError(f"cannot export {checkpoint_path}: it {what}, but an export is a "
                      f"transformers GPT-2 that reads GPT-2's BPE tokens ({GPT2_VOCAB} ids) "
                      f"through the tokenizer shipped with it; only models trained with GPT-2's "
                      f"tokenizer (every preset but tiny-bytes) can be exported; sample or score "
                      f"this one with smolgpt sample / smolgpt eval")
    params = ckpt.materialise(trainables, meta)[0]      # the full weights, whatever method
    files = {**_tokenizer_files_cached(config.block_size),
             "config.json": json.dumps(hf_config(config), indent=2),
             "README.md": model_card(meta, config, spec)}
    payloads = {name: text.encode("utf-8") for name, text in files.items()}
    hashes = {name: hashlib.sha256(b).hexdigest() for name, b in payloads.items()}
    mine, listed = (False, {})
    if (out / "model.safetensors").is_file():
        try:
            mine, listed = _earlier_export(out)
        except (OSError, ValueError, AttributeError):          # not a safetensors file at all
            pass

    def ours(path: Path) -> bool:
        if path.name == "model.safetensors":
            return mine
        return sha256_of(path) in (listed.get(path.name), hashes[path.name])

    refuse_strangers([out / "model.safetensors", *(out / name for name in files)], ours, force)
    # transformers refuses a safetensors archive whose metadata does not say format "pt"; the
    # other two entries let a later export recognise these files as its own
    weights = save(to_hf_state_dict(params), metadata={
        "format": "pt", "written_by": EXPORT_MARK, "smolgpt_files": json.dumps(hashes)})
    write_atomic(out / "model.safetensors", lambda f: f.write(weights))
    for name, payload in payloads.items():
        write_atomic(out / name, lambda f: f.write(payload))
    return out


def import_hf(source, out_checkpoint, force: bool = False) -> Path:
    """A Hugging Face GPT-2 (a local directory, or a Hub id when there is network) -> a smolgpt
    checkpoint at out_checkpoint: method `full` at step 0 with zero Adam moments, which `sample`,
    `eval` and training from it read like any other. Returns out_checkpoint.

    Raises UnsupportedModel (one line) for an architecture, shape or vocabulary smolgpt's GPT-2
    does not have, HFError for anything else the user can fix, and files.WouldReplace if
    out_checkpoint exists (whatever wrote it: it may be a trained run's) unless force.
    """
    from .files import refuse_strangers
    from .optim import adamw_init
    from .train import TrainConfig
    refuse_strangers([out_checkpoint], force=force, force_hint="pass --force to replace it")
    source = str(source)
    folder, revision = _resolve(source)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise HFError(f"{folder} has no config.json: pass a Hugging Face model directory "
                      f"(config.json and model.safetensors)")
    try:
        hf_cfg = json.loads(cfg_path.read_bytes())
    except (ValueError, RecursionError) as e:          # UnicodeDecodeError is a ValueError
        raise HFError(f"{cfg_path} is not valid JSON ({_first_line(e)}): download or save it "
                      f"again") from None
    config = config_from_hf(hf_cfg, where=str(cfg_path))
    params = from_hf_state_dict(read_weights(folder), config,
                                tied=hf_cfg.get("tie_word_embeddings", True),
                                where=f"the weights in {folder}")
    spec = MethodSpec("full")
    train = TrainConfig(gpt=config, method=spec)
    meta = {"model": config.to_dict(), "method": spec.to_dict(), "train": train.to_dict(),
            "data": None, "step": 0, "elapsed": 0.0, "val_curve": [],
            "rng": np.random.default_rng(train.seed).bit_generator.state,
            "imported_from": source}
    if revision is not None:
        meta["imported_revision"] = revision
    ckpt.save(out_checkpoint, params, adamw_init(params), meta)
    return Path(out_checkpoint)
