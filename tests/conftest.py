"""Shared fixtures: where the C4 sample is, and a small prepared dataset for any test to use.

The tests read C4 and GPT-2's tokenizer from local copies named by SMOLGPT_C4_FILES /
SMOLGPT_C4_VAL_FILES / TIKTOKEN_CACHE_DIR (README's *Offline*; CI sets them); without them, the
tests that need data skip and say how to set them. `datasets` is kept offline and its cache goes
to a temporary HF_HOME, so no test can touch the network or the user's ~/.cache.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import smolgpt  # noqa: F401  before any test module loads NumPy (smolgpt/__init__.py says why)

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# the runner trains in the test's own process (monkeypatches reach it, and the chapters' quick
# runs keep their timing); tests/test_pool.py asks for workers itself
os.environ.setdefault("SMOLGPT_WORKERS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if not os.environ.get("HF_HOME"):
    _hf_home = tempfile.mkdtemp(prefix="smolgpt-pytest-hf-home-")
    atexit.register(shutil.rmtree, _hf_home, ignore_errors=True)
    os.environ["HF_HOME"] = _hf_home


@pytest.fixture(scope="session")
def c4_globs() -> tuple[str, str]:
    """(training glob, validation glob) of the C4 sample; skips if the sample is nowhere."""
    train, val = os.environ.get("SMOLGPT_C4_FILES"), os.environ.get("SMOLGPT_C4_VAL_FILES")
    if not (train and val):
        pytest.skip("C4 sample not found: set SMOLGPT_C4_FILES and SMOLGPT_C4_VAL_FILES "
                    "(see data/README.md)")
    return train, val


@pytest.fixture(scope="session")
def gpt2_encoding():
    """tiktoken's gpt2 encoding from TIKTOKEN_CACHE_DIR; skips (never downloads) if not there.

    tiktoken names each cached file sha1(url): these two are vocab.bpe and encoder.json.
    """
    from smolgpt.data import get_encoding
    cache = Path(os.environ.get("TIKTOKEN_CACHE_DIR", "/nonexistent"))
    names = ("6d1cbeee0f20b3d9449abfede4726ed8212e3aee", "6c7ea1a7e38e3a7f062df639a5b80947f075ffe6")
    if not all((cache / n).is_file() for n in names):
        pytest.skip("GPT-2 BPE files not found: set TIKTOKEN_CACHE_DIR (see data/README.md)")
    return get_encoding()


@pytest.fixture(scope="session")
def prepared_data_dir(tmp_path_factory, c4_globs, gpt2_encoding) -> Path:
    """A data dir prepared once per session: the first 200 training / 20 validation documents.

    Pass it as `out_dir` (load_tokens("train", prepared_data_dir)); do not modify it, copy it.
    """
    from smolgpt.data import prepare
    out = tmp_path_factory.mktemp("smolgpt_data")
    prepare(out, train_glob=c4_globs[0], val_glob=c4_globs[1], max_docs=200, verbose=False)
    return out


@pytest.fixture(scope="module")
def one_blas_thread():
    """Matrices as small as the tests' models gain nothing from BLAS threads, and on a busy
    2-core machine OpenBLAS's spinning second thread made such runs 6x slower: one thread for
    the module that asks for it (subprocesses get OPENBLAS_NUM_THREADS=1 themselves)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def finished_run(prepared_data_dir, tmp_path_factory) -> Path:
    """A 3-step `full` run: run/checkpoint.npz and run/log.jsonl. Nothing may change them."""
    from smolgpt.model import GPTConfig
    from smolgpt.train import TrainConfig, train
    out = tmp_path_factory.mktemp("finished_run")
    gpt = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16)     # test_cli.TINY
    train(TrainConfig(gpt=gpt, steps=3, batch_size=2, warmup=1, eval_every=2, eval_windows=4,
                      out=str(out), data_dir=str(prepared_data_dir), sample_tokens=0),
          progress=False, verbose=False)
    return out


@pytest.fixture
def no_progress_bars():
    """`datasets` draws a progress bar on stderr while it reads JSON lines; that is progress
    output, not error text, so it is switched off while a case runs."""
    import datasets
    was_on = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    yield
    if was_on:
        datasets.enable_progress_bars()
