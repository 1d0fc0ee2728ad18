"""What the chapters share: the experiment runner and its helpers. What one chapter alone uses
is in `smolgpt.companions`, in the module named after that chapter.

- `chapter.py`: quick mode and chapter settings, output folders, saving (and in a notebook
  showing) figures;
- `runs.py`: the experiment runner: every run made once, kept, reused; seeds; final scores;
- `stats.py`: mean +- standard error, paired intervals between methods;
- `sweep.py` and `tuned.py`: learning-rate sweeps, and the rates they chose;
- `reference.py`: the context-free (unigram) reference loss;
- `figures.py`: validation curves redrawn from run logs (also `smolgpt plot`);
- `coefficients.py`: what a trained subspace's coefficients did (chapters 03, 07 and 08).

    from smolgpt.experiments import compare, out_dir, quick_mode, save_figure
"""

from .chapter import (chapter_int, out_dir, print_takeaways, quick_mode, save_figure,
                      show_in_notebook, show_source)
from .figures import plot_val_curves, read_log
from .runs import QUICK_MODEL, compare, markdown_table, quick_config, run_name, run_seeds

__all__ = ["chapter_int", "out_dir", "print_takeaways", "quick_mode", "save_figure", "show_source",
           "show_in_notebook",
           "plot_val_curves", "read_log",
           "QUICK_MODEL", "compare", "markdown_table", "quick_config", "run_name", "run_seeds"]
