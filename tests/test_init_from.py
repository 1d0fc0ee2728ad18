"""Starting a run from a saved model (`--init-from`): every method starts exactly where the saved
model is, its checkpoints load back to the same weights, and a changed source is noticed.

Every run is a 1-layer, width-16 GPT-2 on the session's small prepared C4 sample.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from smolgpt import checkpoint as ckpt
from smolgpt import hf
from smolgpt.cli import main
from smolgpt.data import eval_windows, load_tokens
from smolgpt.experiments.runs import run_key
from smolgpt.methods import MethodSpec
from smolgpt.model import GPTConfig
from smolgpt.train import TrainConfig, evaluate, train

TINY = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16)

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def cfg(data_dir, out, **changes) -> TrainConfig:
    base = dict(gpt=TINY, steps=6, batch_size=2, warmup=1, eval_every=6, eval_windows=4,
                checkpoint_every=6, out=str(out), data_dir=str(data_dir), sample_tokens=0)
    return TrainConfig(**{**base, **changes})


def quiet(c, **kwargs):
    return train(c, progress=False, verbose=False, **kwargs)


@pytest.fixture(scope="module")
def source(prepared_data_dir, tmp_path_factory):
    """A fully trained model's checkpoint and its final validation loss (on the fixed windows)."""
    out = tmp_path_factory.mktemp("source")
    summary = quiet(cfg(prepared_data_dir, out, lr=1e-2))
    return out / "checkpoint.npz", summary["val_curve"][-1][2]


SPECS = [MethodSpec("full"), MethodSpec("embeddings"), MethodSpec("fastfood", d=8),
         MethodSpec("basis", d=3, per_tensor=True), MethodSpec("lora", rank=2),
         MethodSpec("said", d=8), MethodSpec("vera", rank=2),
         MethodSpec("nola", rank=2, nola_k=6, nola_l=5)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label().replace(" ", "_"))
def test_every_method_starts_at_the_checkpoints_loss(spec, source, prepared_data_dir, tmp_path):
    path, loss = source
    s = quiet(cfg(prepared_data_dir, tmp_path / "ft", method=spec, init_from=str(path)))
    assert s["val_curve"][0][2] == loss                   # step 0: exactly the saved model
    assert s["val_curve"][-1][2] != loss                  # and it trained from there
    # the fine-tuned checkpoint loads back to the weights it was trained as (frozen part from
    # the source): its loss on the same windows is what the run logged last
    params, gpt, _ = ckpt.load_params(s["checkpoint"])
    val = eval_windows(load_tokens("val", prepared_data_dir), 4, TINY.block_size)
    assert evaluate(params, gpt, *val, 2) == s["val_curve"][-1][2]


def test_full_for_no_useful_step_reproduces_the_checkpoint(source, prepared_data_dir, tmp_path):
    """Full training from a checkpoint, with a rate too small to move anything, keeps its loss."""
    path, loss = source
    s = quiet(cfg(prepared_data_dir, tmp_path / "ft", steps=1, lr=1e-12, weight_decay=0.0,
                  init_from=str(path)))
    assert s["val_curve"][0][2] == loss
    assert abs(s["val_curve"][-1][2] - loss) < 1e-6
    before, _, _ = ckpt.load(path)
    after, _, _ = ckpt.load(s["checkpoint"])
    assert max(np.abs(before[k] - after[k]).max() for k in before) < 1e-9


def test_an_imported_hugging_face_model_is_a_source(source, prepared_data_dir, tmp_path):
    path, loss = source
    imported = hf.import_hf(hf.export_hf(path, tmp_path / "hf"), tmp_path / "imp.npz")
    s = quiet(cfg(prepared_data_dir, tmp_path / "ft", method=MethodSpec("said", d=8),
                  init_from=str(imported)))
    assert s["val_curve"][0][2] == loss


def test_another_model_is_refused_in_one_line(source, prepared_data_dir, tmp_path):
    path, _ = source
    other = dataclasses.replace(TINY, n_embd=32)
    with pytest.raises(ckpt.CheckpointError, match="holds a model with n_layer=1 n_head=2 "
                                                   "n_embd=16.*this run's is .*n_embd=32"):
        quiet(cfg(prepared_data_dir, tmp_path / "ft", gpt=other, init_from=str(path)))
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint there"):
        quiet(cfg(prepared_data_dir, tmp_path / "ft2", init_from=str(tmp_path / "nope.npz")))


def test_no_offset_is_refused(source, prepared_data_dir, tmp_path):
    path, _ = source
    with pytest.raises(ValueError, match="drop --no-offset"):
        quiet(cfg(prepared_data_dir, tmp_path / "ft", init_from=str(path),
                  method=MethodSpec("basis", d=4, offset=False)))


def test_a_changed_source_is_noticed_when_loading(source, prepared_data_dir, tmp_path):
    path, _ = source
    copy = tmp_path / "src.npz"
    shutil.copy(path, copy)
    s = quiet(cfg(prepared_data_dir, tmp_path / "ft", method=MethodSpec("fastfood", d=8),
                  init_from=str(copy)))
    ckpt.load_params(s["checkpoint"])                                     # fine as it is
    other = quiet(cfg(prepared_data_dir, tmp_path / "other", seed=1))     # another model
    shutil.copy(other["checkpoint"], copy)
    with pytest.raises(ckpt.CheckpointError, match="has changed since"):
        ckpt.load_params(s["checkpoint"])
    copy.unlink()
    with pytest.raises(ckpt.CheckpointError, match="which is gone"):
        ckpt.load_params(s["checkpoint"])


def test_run_key_follows_the_sources_content_not_its_path(source, tmp_path):
    path, _ = source
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    shutil.copy(path, a)
    shutil.copy(path, b)
    c = TrainConfig(gpt=TINY, method=MethodSpec("said", d=8))
    data_id = {"train": "x", "val": "y"}
    key = lambda p: run_key(dataclasses.replace(c, init_from=str(p)), data_id)  # noqa: E731
    assert key(a) == key(b) != run_key(c, data_id)
    trainables, adam, meta = ckpt.load(b)
    trainables["wte.weight"][0, 0] += 1.0
    ckpt.save(b, trainables, adam, meta)
    assert key(a) != key(b)


def test_command_line_takes_the_model_from_the_checkpoint(source, prepared_data_dir, tmp_path,
                                                          capsys, monkeypatch):
    path, loss = source
    monkeypatch.setenv("SMOLGPT_DATA_DIR", str(prepared_data_dir))
    out = tmp_path / "ft"
    code = main(["train", "--init-from", str(path), "--method", "said", "--d", "8",
                 "--steps", "2", "--batch-size", "2", "--eval-windows", "4", "--eval-every", "2",
                 "--no-progress", "--sample-tokens", "0", "--out", str(out)])
    assert code in (0, None)
    _, _, meta = ckpt.load(out / "checkpoint.npz")
    assert meta["model"] == TINY.to_dict()
    assert meta["train"]["init_from"] == str(path.resolve())
    first = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()
             if '"eval"' in line][0]
    assert first["val_loss"] == loss


@pytest.mark.parametrize("spec", [MethodSpec("full"), MethodSpec("fastfood", d=8)],
                         ids=lambda s: s.label().replace(" ", "_"))
def test_weight_changes_count_from_the_weights_a_run_started_from(spec, source, prepared_data_dir,
                                                                 tmp_path):
    """A fine-tuned run's weight changes are measured from the saved model it began at, not from
    its seed's random init."""
    from smolgpt.experiments.coefficients import weight_changes
    from smolgpt.model import EMBEDDING_NAMES
    path, _ = source
    s = quiet(cfg(prepared_data_dir, tmp_path / "ft", method=spec, init_from=str(path)))
    start, _, _ = ckpt.load_params(path)
    final, _, _ = ckpt.load_params(s["checkpoint"])
    moved = [np.asarray(final[k], np.float64) - np.asarray(start[k], np.float64)
             for k in final if k not in EMBEDDING_NAMES]
    rms = np.sqrt(sum(float(np.sum(d * d)) for d in moved) / sum(d.size for d in moved))
    assert 0 < rms < 0.05                      # a few small steps from the saved model
    assert weight_changes(s["checkpoint"])["all"] == pytest.approx(rms, rel=1e-6)


def test_a_resumed_run_keeps_its_start(source, prepared_data_dir, tmp_path):
    """train() itself (not only the command line) refuses a resume whose start differs from the
    one the checkpoint was trained from."""
    path, _ = source
    c = cfg(prepared_data_dir, tmp_path / "ft", init_from=str(path))
    quiet(c, stop_at=2)
    resumed = tmp_path / "ft" / "checkpoint.npz"
    with pytest.raises(ckpt.CheckpointError, match=f"was started from {path.resolve()}, and a "
                                                   f"resumed run keeps its start: resume with "
                                                   f"init_from="):
        quiet(dataclasses.replace(c, init_from=None), resume=resumed)
