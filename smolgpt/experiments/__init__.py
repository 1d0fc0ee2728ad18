"""Everything the chapters share, in one place.

- `chapter.py`: quick mode, output folders, saving (and in a notebook showing) figures;
- `runs.py`: training several parameterizations on the same tokens, and their table;
- `figures.py`: validation curves redrawn from run logs (also `smolgpt plot`).

    from smolgpt.experiments import compare, out_dir, quick_mode, save_figure
"""

from .chapter import out_dir, quick_mode, save_figure
from .figures import plot_val_curves, read_log
from .runs import QUICK_MODEL, compare, markdown_table, quick_config, run_name

__all__ = ["out_dir", "quick_mode", "save_figure", "plot_val_curves", "read_log", "QUICK_MODEL",
           "compare", "markdown_table", "quick_config", "run_name"]
