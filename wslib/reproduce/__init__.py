"""Reproduce the paper's experiments from one command, with a provenance-stamped JSON result.

    python -m wslib.reproduce rotated-mnist --model wscnn --profile paper
    python -m wslib.reproduce toy-shift --profile quick
    python -m wslib.reproduce sweep --tables 1,3 --seeds 0,1,2 --profile paper --launcher slurm
    python -m wslib.reproduce --list

Each run trains one model on one experiment of the paper (Tables 1-4) or one of
its toy problems, at the scale of a profile (:mod:`wslib.profiles`), and writes
``results/<experiment>/<model>_<profile>_seed<seed>.json`` atomically. The JSON says what was
run and where: git commit (and whether the tree had uncommitted changes), device, library
versions, dataset source and sizes, epochs, seed and wall time -- so that the book can label
every recorded number, and never call a number paper-scale unless ``paper_scale`` is true.
Training checkpoints go to ``runs/checkpoints/`` (ignored by git): rerunning an interrupted
command resumes it.

A *sweep* runs any set of the paper's tables and seeds, each run one job of a job array,
through submitit: as processes on this machine or on SLURM, where a pre-empted or timed-out job
is requeued and resumes from its checkpoint. A sweep lives in one folder (``runs/sweeps/...``);
rerunning its command submits only the runs without a complete result, and collecting it prints
the paper's tables, ours as mean ± std over the seeds beside the paper's numbers.

One job per file: ``experiments`` (the experiments, the toy recipe, the paper's tables),
``runner`` (one experiment -> one result file), ``sweep`` (a sweep's runs, its jobs and its
folder), ``launch`` (submitting through submitit and waiting) and ``cli`` (the command line).
"""
from .cli import main
from .experiments import EXPERIMENTS, TABLE1_ENT, TABLE1_PAPER, TABLE1_RUNS, TABLES, Experiment, Table, toy_model, \
    toy_recipe
from .launch import LaunchOptions, format_table1, run_sweep, run_table1
from .runner import REPO_ROOT, is_paper_scale, run_experiment, write_result
from .sweep import Run, Sweep, SweepJob, format_tables, table_runs

__all__ = ["EXPERIMENTS", "TABLE1_RUNS", "run_experiment", "is_paper_scale", "run_table1", "toy_recipe",
           "toy_model", "write_result", "main", "TABLES", "Table", "Run", "table_runs", "SweepJob", "Sweep",
           "LaunchOptions", "run_sweep", "format_tables"]
