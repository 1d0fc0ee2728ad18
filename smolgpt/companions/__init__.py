"""Each chapter's own companion code, one module per chapter named after it (`chNN_<topic>.py`):
the longer analysis, plans and figures a single chapter needs, kept behind named functions so
the chapter's cells stay short. What several chapters share (the runner, statistics, sweeps,
figures) is in `smolgpt.experiments`."""
