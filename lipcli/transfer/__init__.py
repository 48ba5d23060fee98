"""`lip transfer`: restore a grid (mask x round x image x task x seed, plus baselines) and report it.

Every run is one grid *cell* and gives one JSON row, appended to a JSONL file as soon as it finishes;
a re-run skips the cells already there (so a killed grid resumes), `--shard i/n` runs every n-th
cell into its own file, and `merge` joins the shards. From the rows come a summary CSV (mean and
std over seeds), PSNR-vs-sparsity plots (LIP Fig. 3-5), PSNR/loss-vs-iteration curves (Fig. 11),
and two experiments: *impedance* and *spectrum*. One module per job:

  grid         options parsed, mask artifacts, the cells in their fixed order, a row's identity
  run          each cell's problem and prior, fitting it, resuming (which cells are still to run)
  rows         the JSONL rows on disk: read, append, merge shards
  summary      labels, method order, mean and std over seeds, CSV
  report       summary.csv and every plot
  experiments  the impedance targets and the spectrum measure
  workers      `--device A,B`: one `--shard i/n` worker process per device

Nothing here prints; the CLI renders. This module exposes what the CLI uses.
"""
from .experiments import IMPEDANCE_TARGETS
from .grid import (EXPERIMENTS, Cell, Grid, check_experiment, load_masks, parse_baselines, parse_rounds,
                   parse_tasks, task_operator)
from .report import PLOT_METRICS, check_outputs, write_outputs
from .rows import STEMS, exclusive, joined, merge, missing_shards, read_rows, row_key, rows_name, tables_held
from .run import cell_problem, pending, run_cells
from .summary import label, mean_of, method_order

__all__ = ["EXPERIMENTS", "IMPEDANCE_TARGETS", "PLOT_METRICS", "STEMS", "Cell", "Grid", "cell_problem",
           "check_experiment", "check_outputs", "exclusive", "joined", "label", "load_masks", "mean_of", "merge",
           "method_order", "missing_shards", "parse_baselines", "parse_rounds", "parse_tasks", "pending", "read_rows",
           "row_key", "rows_name", "run_cells", "tables_held", "task_operator", "write_outputs"]
