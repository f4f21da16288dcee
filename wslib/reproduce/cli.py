"""The command line ``python -m wslib.reproduce``: one experiment, a sweep of many, or Table 1."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import torch

from .._validate import BadArgument, OneLineParser
from ..checkpoints import _check_writable_path
from ..profiles import PROFILES, current_profile, settings
from ..train import default_device
from . import launch, sweep
from .experiments import EXPERIMENTS, TABLE1_RUNS
from .runner import REPO_ROOT, _FULL_SIZES, _json_safe, _progress_printer, _result_path, _run_variant, \
    run_experiment, write_result


def _cuda_missing(device: str | None) -> str | None:
    if device is not None and device.startswith("cuda") and not torch.cuda.is_available():
        return (f"--device {device} was asked for, but torch {torch.__version__} sees no CUDA "
                "device on this machine; use --device cpu")
    return None


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse, before any work, what argparse's types let through: non-finite or negative
    numbers, an unknown device, unwritable result and checkpoint locations."""
    if not math.isfinite(args.lambda_ent) or args.lambda_ent < 0:
        raise BadArgument(f"--lambda-ent must be a finite number >= 0; got {args.lambda_ent}")
    if not math.isfinite(args.theta) or not 0 < args.theta <= 360:
        raise BadArgument(f"--theta must be an angle in degrees in (0, 360]; got {args.theta}")
    if args.jobs is not None and args.jobs < 1:
        raise BadArgument(f"--jobs must be >= 1; got {args.jobs}")
    if args.device is not None:
        try:
            torch.device(args.device)
        except (RuntimeError, ValueError):
            raise BadArgument(f"--device must name a torch device such as cpu or cuda; got "
                              f"{args.device!r}") from None
    threads = os.environ.get("WSLIB_TORCH_THREADS")
    if threads and not (threads.isdigit() and int(threads) >= 1):
        raise BadArgument(f"WSLIB_TORCH_THREADS must be a positive integer; got {threads!r}")
    try:
        _check_writable_path(args.results_dir, "--results-dir", folder=True)
        _check_writable_path(args.checkpoint_dir, "--checkpoint-dir", folder=True)
        if args.experiment in EXPERIMENTS:
            profile = args.profile or current_profile()
            variant = _run_variant(args.experiment, args.model, args.lambda_ent, args.theta, args.task)
            _check_writable_path(_result_path(Path(args.results_dir), args.experiment, variant,
                                              profile, args.seed), "the result file")
    except ValueError as err:
        raise BadArgument(str(err)) from None


def main(argv: list[str] | None = None) -> int:
    """The command line ``python -m wslib.reproduce`` (``argv``: its arguments, default
    ``sys.argv[1:]``); returns the exit status: 0 on success, 2 for bad arguments (one line on
    stderr, checked before any training) or a missing dataset, 1 if the result cannot be
    written after all (it is then printed). ``sweep ...`` runs a sweep (``sweep --help``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sweep"]:
        return sweep_main(argv[1:])
    parser = OneLineParser(prog="python -m wslib.reproduce",
                           description="Reproduce the paper's experiments from one command, with a "
                                       "provenance-stamped JSON result.",
                           epilog="python -m wslib.reproduce sweep --help: many runs as one job array")
    parser.add_argument("experiment", nargs="?", help="experiment name (see --list)")
    parser.add_argument("--model", default="wscnn", help="cnn, gcnn or wscnn (default wscnn)")
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="quick, tutorial or paper (default: $WSLIB_PROFILE, else tutorial)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lambda-ent", type=float, default=0.0, help="entropy regulariser weight")
    parser.add_argument("--theta", type=float, default=90.0, help="max angle of partial-rotated-mnist")
    parser.add_argument("--task", choices=("invariant", "equivariant"), default="invariant",
                        help="labels of the toy problems")
    parser.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    parser.add_argument("--results-dir", default=str(REPO_ROOT / "results"))
    parser.add_argument("--checkpoint-dir", default=str(REPO_ROOT / "runs" / "checkpoints"))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--jobs", type=int, default=None,
                        help="table1: runs at once (default: all on CUDA, one per core on a CPU)")
    parser.add_argument("--progress-lines", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    try:
        args = parser.parse_args(argv)
        if args.list or not args.experiment:
            print(f"{'sweep':24s} any of the paper's tables and seeds as one job array, locally or on "
                  "SLURM (sweep --help)")
            print(f"{'table1':24s} the MNIST rows of Table 1 (8 runs; short for sweep --tables 1)")
            for e in EXPERIMENTS.values():
                print(f"{e.name:24s} models: {', '.join(e.models):16s} {e.paper:16s} {e.description}")
            return 0
        _check_arguments(args)
    except BadArgument as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    missing = _cuda_missing(args.device)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    if os.environ.get("WSLIB_TORCH_THREADS"):  # torch's CPU threads for this process, if set
        torch.set_num_threads(int(os.environ["WSLIB_TORCH_THREADS"]))
    if args.experiment == "table1":
        try:
            done = launch.run_table1(args.profile or current_profile(), args.device or str(default_device()),
                                     args.seed, args.jobs, args.results_dir, args.checkpoint_dir)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0 if len(done) == len(TABLE1_RUNS) else 1
    callback = None
    if args.progress_lines and args.experiment in EXPERIMENTS and EXPERIMENTS[args.experiment].kind == "mnist":
        s = settings(args.profile)
        callback = _progress_printer((s.mnist_train_size or _FULL_SIZES["mnist"][0]) // s.mnist_batch_size,
                                     s.mnist_epochs)
    try:
        result = run_experiment(args.experiment, args.model, args.profile, args.seed, args.lambda_ent,
                                args.theta, args.device, args.checkpoint_dir, not args.no_progress,
                                args.task, callback=callback)
    except ValueError as err:  # bad arguments or a missing dataset: say so, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        path = write_result(result, args.results_dir)
    except OSError as err:  # checked before training, but the disk may have changed since
        print(json.dumps(_json_safe(result), indent=2, ensure_ascii=False))
        print(f"error: the result could not be written ({err}); it is printed above",
              file=sys.stderr)
        return 1
    m = result["metrics"]
    print(f"{result['experiment']} / {result['model']} / profile {result['profile']}: "
          f"test accuracy {m['test_acc']:.4f} after {m['epochs_trained']} epochs "
          f"({result['provenance']['wall_time_s']:.1f} s) -> {path}")
    return 0


# --- python -m wslib.reproduce sweep ----------------------------------------------------------


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise BadArgument(f"{what} must be a comma-separated list of integers; got {text!r}") from None
    if not values:
        raise BadArgument(f"{what} is empty")
    return list(dict.fromkeys(values))


def _sweep_parser(prog: str = "python -m wslib.reproduce sweep") -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description="Any set of the paper's tables and experiments, for "
                      "any seeds, as one job array (local processes or SLURM) in one folder.")
    what = p.add_argument_group("what to run")
    what.add_argument("--tables", default="", help="the paper's tables, e.g. 1,3 (1-4; 2 and 4 need CIFAR-10)")
    what.add_argument("--experiments", default="", help="further experiments by name, e.g. toy-shift,toy-c4")
    what.add_argument("--models", default=None, help="with --experiments: only these models (default all)")
    what.add_argument("--lambda-ent", type=float, default=0.0, help="with --experiments: entropy weight")
    what.add_argument("--theta", type=float, default=90.0, help="with --experiments: partial-rotated-mnist angle")
    what.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    what.add_argument("--profile", choices=PROFILES, default=None,
                      help="quick, tutorial, gpu or paper (default: $WSLIB_PROFILE, else tutorial)")
    where = p.add_argument_group("where")
    where.add_argument("--folder", default=None, help="the sweep's folder (default runs/sweeps/<what>_<profile>_seeds<...>)")
    where.add_argument("--results-dir", default=None, help="where result JSON files go (default FOLDER/results)")
    where.add_argument("--checkpoint-dir", default=None, help="where training checkpoints go (default FOLDER/checkpoints)")
    where.add_argument("--status", metavar="FOLDER", default=None, help="print each run's state and last progress line")
    where.add_argument("--collect", metavar="FOLDER", default=None, help="print the status and the tables of a sweep")
    how = p.add_argument_group("how")
    how.add_argument("--launcher", choices=launch.LAUNCHERS, default="local",
                     help="local: processes on this machine (default); slurm: a SLURM job array")
    how.add_argument("--parallel", type=int, default=None,
                     help="jobs at once (default: local one per CPU core, or all with CUDA; SLURM min(runs, 64))")
    how.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's default)")
    how.add_argument("--gpus-per-job", type=int, default=None, help="SLURM: default 1 for gpu/paper, else 0")
    how.add_argument("--cpus-per-job", type=int, default=None, help="default SLURM 8 with a GPU, else 1")
    how.add_argument("--mem-gb", type=float, default=None, help="SLURM memory per job (default 32 with a GPU, else 4)")
    how.add_argument("--time", type=int, default=None, dest="time_min",
                     help="time limit per job in minutes (SLURM default 1440 for gpu/paper, else 60); "
                          "a job that reaches it is requeued and resumes")
    how.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                     help="any further sbatch option, e.g. account=myproject (repeatable)")
    how.add_argument("--device", default=None, help="default: cuda with a GPU, else cpu")
    how.add_argument("--wait", dest="wait", action="store_true", default=None,
                     help="wait for the jobs and print the tables (default for local)")
    how.add_argument("--no-wait", dest="wait", action="store_false", help="submit and return (default for SLURM)")
    return p


def sweep_main(argv: list[str] | None = None, prog: str = "python -m wslib.reproduce sweep") -> int:
    """``python -m wslib.reproduce sweep`` (``argv``: the arguments after ``sweep``): 0 when every
    run of the sweep is done, 1 when some are not (yet), 2 for bad arguments or data that cannot be
    had (one line on stderr, before any job is submitted)."""
    parser = _sweep_parser(prog)
    try:
        args = parser.parse_args(argv)
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise BadArgument("sweeps need submitit: pip install -e '.[cluster]' (or pip install submitit)") from None
        if args.status or args.collect:
            return 0 if launch.collect(args.status or args.collect) else 1
        tables = _int_list(args.tables, "--tables") if args.tables else []
        experiments = [e for e in args.experiments.replace(" ", "").split(",") if e]
        if not tables and not experiments:
            raise BadArgument("say what to run: --tables (e.g. 1,3) and/or --experiments (e.g. toy-shift)")
        seeds = _int_list(args.seeds, "--seeds")
        profile = args.profile or current_profile()
        models = None if args.models is None else [m for m in args.models.split(",") if m]
        for name, value in (("--parallel", args.parallel), ("--cpus-per-job", args.cpus_per_job),
                            ("--time", args.time_min)):
            if value is not None and value < 1:
                raise BadArgument(f"{name} must be >= 1; got {value}")
        if args.gpus_per_job is not None and args.gpus_per_job < 0:
            raise BadArgument(f"--gpus-per-job must be >= 0; got {args.gpus_per_job}")
        if not math.isfinite(args.lambda_ent) or args.lambda_ent < 0:
            raise BadArgument(f"--lambda-ent must be a finite number >= 0; got {args.lambda_ent}")
        if not math.isfinite(args.theta) or not 0 < args.theta <= 360:
            raise BadArgument(f"--theta must be an angle in degrees in (0, 360]; got {args.theta}")
        if args.mem_gb is not None and not (math.isfinite(args.mem_gb) and args.mem_gb > 0):
            raise BadArgument(f"--mem-gb must be a positive number; got {args.mem_gb}")
        missing = _cuda_missing(args.device) if args.launcher == "local" else None
        if missing:
            raise BadArgument(missing)
        bad = [kv for kv in args.slurm_option if "=" not in kv]
        if bad:
            raise BadArgument(f"--slurm-option takes KEY=VALUE; got {bad[0]!r}")
        runs = sweep.table_runs(tables, experiments, seeds, profile, models, args.lambda_ent, args.theta)
    except (BadArgument, ValueError) as err:  # ValueError: an unknown table, experiment or model
        print(f"error: {err}", file=sys.stderr)
        return 2
    folder = Path(args.folder) if args.folder else sweep.default_folder(tables, experiments, profile, seeds)
    opts = launch.LaunchOptions(args.launcher, args.parallel, args.partition, args.gpus_per_job,
                                args.cpus_per_job, args.mem_gb, args.time_min, args.device,
                                tuple(args.slurm_option))
    try:
        states = launch.run_sweep(runs, folder, opts, args.wait, args.results_dir, args.checkpoint_dir)
    except ValueError as err:  # a dataset that cannot be had, or a folder of another launcher
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0 if all(s == "done" for s, _ in states.values()) else 1
