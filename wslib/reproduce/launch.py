"""Launching a sweep through submitit: its runs as one job array, either processes on this machine
(``LocalExecutor``, at most ``parallel`` at once) or a SLURM array; waiting for the jobs while
printing their progress; and Table 1 in one call.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from .. import data as wdata
from ..profiles import settings
from .experiments import TABLES
from .runner import _PROGRESS, REPO_ROOT, _run_variant
from .sweep import (
    _MARK,
    Run,
    Sweep,
    SweepJob,
    _cell_runs,
    _format_progress,
    _format_tables,
    _progress_line,
    default_folder,
    format_status,
    format_tables,
)

LAUNCHERS = ("local", "slurm")


@dataclass
class LaunchOptions:
    """How a sweep's jobs are launched. Fields left ``None`` are filled in from the profile.

    Attributes:
        launcher: ``"local"`` (processes on this machine) or ``"slurm"`` (a SLURM job array).
        parallel: jobs at once; on SLURM the array's parallelism (default: all runs, at most 64;
            locally one per CPU core, or every run when they train on CUDA).
        partition: the SLURM partition (default: the cluster's default partition).
        gpus_per_job, cpus_per_job, mem_gb, time_min: what each SLURM job asks for (default:
            1 GPU, 8 CPUs, 32 GB and 24 h for the ``gpu`` and ``paper`` profiles, else no GPU,
            1 CPU, 4 GB and 1 h); a job that reaches its time limit is requeued and resumes.
        device: the torch device of each run (default: ``cuda`` with a GPU, else ``cpu``).
        slurm_options: further sbatch options as ``KEY=VALUE``, e.g. ``account=myproject``.
    """

    launcher: str = "local"
    parallel: int | None = None
    partition: str | None = None
    gpus_per_job: int | None = None
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    time_min: int | None = None
    device: str | None = None
    slurm_options: tuple[str, ...] = ()


def _defaults(opts: LaunchOptions, profile: str, n_runs: int) -> LaunchOptions:
    """Fill in what was not given. On SLURM the ``gpu`` and ``paper`` profiles ask for one GPU,
    8 CPUs and 32 GB per job and 24 h (a job that reaches it is requeued and resumes); smaller
    profiles ask for one CPU, 4 GB and an hour. Locally, jobs share this machine's cores."""
    big = profile in ("gpu", "paper")
    o = LaunchOptions(**asdict(opts))
    if o.launcher == "slurm":
        o.gpus_per_job = (1 if big else 0) if o.gpus_per_job is None else o.gpus_per_job
        o.cpus_per_job = o.cpus_per_job or (8 if big else 1)
        o.mem_gb = o.mem_gb or (32 if big else 4)
        o.time_min = o.time_min or (24 * 60 if big else 60)
        o.parallel = o.parallel or min(n_runs, 64)
        o.device = o.device or ("cuda" if o.gpus_per_job else "cpu")
    else:
        import torch

        cuda = torch.cuda.is_available() if o.device is None else o.device.startswith("cuda")
        cores = os.cpu_count() or 1
        o.parallel = o.parallel or (n_runs if cuda else cores)
        o.cpus_per_job = o.cpus_per_job or max(1, cores // max(1, min(o.parallel, n_runs)))
        o.time_min = o.time_min or 7 * 24 * 60
    return o


def _executor(sweep: Sweep, o: LaunchOptions, n_runs: int):
    import submitit

    if o.launcher == "slurm":
        ex = submitit.SlurmExecutor(folder=sweep.jobs_dir, max_num_timeout=20)
        extra = dict(kv.split("=", 1) for kv in o.slurm_options)
        params: dict[str, Any] = dict(time=o.time_min, cpus_per_task=o.cpus_per_job, mem=f"{int(o.mem_gb * 1024)}M",
                                      array_parallelism=min(o.parallel, max(n_runs, 1)), stderr_to_stdout=True,
                                      job_name="wslib-sweep", signal_delay_s=120 if o.time_min >= 30 else 30)
        if o.partition:
            params["partition"] = o.partition
        if o.gpus_per_job:
            params["gpus_per_node"] = o.gpus_per_job
        if extra:
            params["additional_parameters"] = extra
        ex.update_parameters(**params)
    else:
        ex = submitit.LocalExecutor(folder=sweep.jobs_dir, max_num_timeout=20)
        gpus = _local_gpus(o.device)
        params = dict(timeout_min=o.time_min, stderr_to_stdout=True, gpus_per_node=len(gpus))
        if gpus:
            params["visible_gpus"] = gpus
        ex.update_parameters(**params)
    return ex


def _local_gpus(device: str | None) -> tuple[int, ...]:
    """The GPUs that local jobs may use (submitit sets each job's ``CUDA_VISIBLE_DEVICES`` to
    them): none for CPU runs, else every GPU this process sees; the jobs share them."""
    import torch

    if not (torch.cuda.is_available() if device is None else device.startswith("cuda")):
        return ()
    visible = [x.strip() for x in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if x.strip()]
    if visible and all(x.isdigit() for x in visible):
        return tuple(int(x) for x in visible)
    return tuple(range(torch.cuda.device_count()))


def _prepare_data(runs: list[Run], out: TextIO) -> None:
    """Fetch every dataset the runs need once, here, before any job starts (compute nodes are
    often offline); raises ``DatasetUnavailable`` with what to do when one cannot be had."""
    seen = set()
    for r in runs:
        s = settings(r.profile)
        key = (r.kind, s.mnist_source if r.kind == "mnist" else None)
        if r.kind == "toy" or key in seen:
            continue
        seen.add(key)
        if r.kind == "mnist":
            wdata.load_mnist(source=s.mnist_source)
        else:
            wdata.cifar10(train_size=s.cifar_train_size, test_size=s.cifar_test_size, seed=0)
        print(f"data for {r.kind} runs: ready", file=out, flush=True)


def submit(sweep: Sweep, runs: list[Run], opts: LaunchOptions, out: TextIO) -> list:
    """Submit ``runs`` as one job array (locally: at most ``opts.parallel`` processes at once,
    the rest as slots free up -- ``wait`` does that); record every job id in ``sweep.json``."""
    if not runs:
        return []
    o = _defaults(opts, runs[0].profile, len(runs))
    sweep.launcher = o.launcher
    ex = _executor(sweep, o, len(runs))
    jobs_list = [SweepJob(r, str(sweep.results_dir), str(sweep.checkpoint_dir), o.device, o.cpus_per_job)
                 for r in runs]
    if o.launcher == "slurm":
        with ex.batch():
            handles = [ex.submit(j) for j in jobs_list]
        for r, h in zip(runs, handles):
            sweep.jobs.setdefault(r.name, []).append(str(h.job_id))
        sweep.save()
        print(f"submitted {len(runs)} runs as SLURM job array {handles[0].job_id.split('_')[0]} "
              f"({o.parallel} at a time, {o.gpus_per_job} GPU(s), {o.cpus_per_job} CPU(s), "
              f"{o.mem_gb:g} GB, {o.time_min} min each{', partition ' + o.partition if o.partition else ''})",
              file=out, flush=True)
        return handles
    return _LocalQueue(sweep, ex, list(zip(runs, jobs_list)), o.parallel, out).start()


class _LocalQueue:
    """Local jobs: submitit starts each at once, so this holds back all but ``parallel``."""

    def __init__(self, sweep: Sweep, ex, waiting: list, parallel: int, out: TextIO) -> None:
        self.sweep, self.ex, self.waiting, self.parallel, self.out = sweep, ex, waiting, parallel, out
        self.running: list = []

    def start(self) -> "_LocalQueue":
        self.fill()
        return self

    def fill(self) -> None:
        self.running = [(r, h) for r, h in self.running if h._process is not None and h._process.poll() is None]
        free = self.parallel - len(self.running)
        if free <= 0 or not self.waiting:
            return
        batch, self.waiting = self.waiting[:free], self.waiting[free:]
        with self.ex.batch():
            handles = [self.ex.submit(j) for _, j in batch]
        for (r, _), h in zip(batch, handles):
            self.sweep.jobs.setdefault(r.name, []).append(str(h.job_id))
            self.running.append((r, h))
            print(f"[{r.name}] started as local job {h.job_id}", file=self.out, flush=True)
        self.sweep.save()

    def busy(self) -> bool:
        self.fill()
        return bool(self.running or self.waiting)


def wait(sweep: Sweep, queue: "_LocalQueue | None", out: TextIO, poll_s: float = 1.0) -> None:
    """Wait until no job of the sweep is queued or running, printing each run's progress lines
    (and, locally, starting held-back jobs as slots free up)."""
    offsets: dict[Path, int] = {}
    reported: set[str] = set()
    while True:
        busy = queue.busy() if queue is not None else False
        states = sweep.states()
        for run in sweep.runs:
            state, job = states[run.name]
            if job is None:
                continue
            log = sweep.log(job)
            try:
                with open(log, errors="replace") as f:
                    f.seek(offsets.get(log, 0))
                    chunk = f.read()
                    offsets[log] = f.tell()
            except OSError:
                chunk = ""
            for line in chunk.splitlines():
                if line.startswith(_PROGRESS):
                    print(f"[{run.name}] {_format_progress(json.loads(line[len(_PROGRESS):]))}", file=out, flush=True)
                elif line.startswith(_MARK) and '"requeue"' in line:
                    print(f"[{run.name}] pre-empted or timed out: requeued, resumes from its checkpoint",
                          file=out, flush=True)
            key = f"{job}:{state}"
            if state in ("done", "failed", "interrupted") and key not in reported and (queue is None or not any(
                    str(h.job_id) == job for _, h in queue.running)):
                reported.add(key)
                print(f"[{run.name}] {state}: {_progress_line(sweep, run, job)}", file=out, flush=True)
        if not busy and not any(s in ("pending", "running") for s, _ in states.values()):
            return
        time.sleep(poll_s)


def run_sweep(runs: list[Run], folder: str | Path, opts: LaunchOptions, wait_for_jobs: bool | None = None,
              results_dir: str | Path | None = None, checkpoint_dir: str | Path | None = None,
              out=None) -> dict[str, tuple[str, str | None]]:
    """Submit every run of the sweep in ``folder`` (``runs`` and any it already holds) that has no
    complete result and no job queued or running; wait for the jobs if ``wait_for_jobs`` (default:
    locally yes, on SLURM no); print the tables once every run is done.

    ``results_dir`` and ``checkpoint_dir`` replace the folder's own ``results/`` and
    ``checkpoints/``; ``out`` is where to print (default stdout).

    Returns:
        ``{run name: (state, job id)}`` after submitting (and waiting).
    """
    out = out or sys.stdout
    sweep = Sweep(folder)
    if sweep.exists() and sweep.launcher != opts.launcher and any(sweep.jobs.values()):
        raise ValueError(f"{folder} is a sweep launched with --launcher {sweep.launcher}; "
                         f"use that launcher or another --folder")
    if results_dir is not None:
        sweep.results_dir = Path(results_dir).absolute()
    if checkpoint_dir is not None:
        sweep.checkpoint_dir = Path(checkpoint_dir).absolute()
    sweep.launcher = opts.launcher
    sweep.add(runs)
    sweep.save()
    states = sweep.states()
    todo = [r for r in sweep.runs if states[r.name][0] in ("not submitted", "failed", "interrupted")]
    skipped = {s: sum(1 for x, _ in states.values() if x == s) for s in ("done", "pending", "running")}
    print(f"sweep {sweep.folder}: {len(sweep.runs)} runs; {skipped['done']} done, "
          f"{skipped['pending'] + skipped['running']} queued or running, {len(todo)} to submit",
          file=out, flush=True)
    _prepare_data(todo, out)
    handles = submit(sweep, todo, opts, out)
    if wait_for_jobs is None:
        wait_for_jobs = opts.launcher == "local"
    if wait_for_jobs:
        wait(sweep, handles if isinstance(handles, _LocalQueue) else None, out)
    elif opts.launcher == "local" and isinstance(handles, _LocalQueue) and handles.waiting:
        wait(sweep, handles, out)  # held-back local jobs need this process to start them
    states = sweep.states()
    if all(s == "done" for s, _ in states.values()):
        print(file=out)
        print(format_tables(sweep.runs, sweep.results_dir), file=out, flush=True)
        print(f"\nresults: {sweep.results_dir}", file=out, flush=True)
    elif not wait_for_jobs:
        print(f"follow it with: python -m wslib.reproduce sweep --status {sweep.folder}", file=out, flush=True)
    else:
        print(file=out)
        print(format_status(sweep), file=out, flush=True)
        print("rerun the same command to resubmit the unfinished runs; they resume from their checkpoints",
              file=out, flush=True)
    return states


def collect(folder: str | Path, out=None) -> bool:
    """Print a sweep's status and, with every run done, its tables; return whether all are done."""
    out = out or sys.stdout
    sweep = Sweep(folder)
    if not sweep.exists():
        raise ValueError(f"{folder} is not a sweep folder (no sweep.json)")
    print(format_status(sweep), file=out, flush=True)
    done = all(s == "done" for s, _ in sweep.states().values())
    if any(r.complete(sweep.results_dir) for r in sweep.runs):
        print(file=out)
        print(format_tables(sweep.runs, sweep.results_dir), file=out, flush=True)
    return done


# --- Table 1 in one call ------------------------------------------------------------------------


def run_table1(profile: str, device: str | None = None, seed: int = 0, jobs: int | None = None,
               results_dir: str | Path = REPO_ROOT / "results",
               checkpoint_dir: str | Path = REPO_ROOT / "runs" / "checkpoints",
               out=None) -> dict[tuple[str, str], dict]:
    """The MNIST rows of the paper's Table 1 -- CNN, GCNN, WSCNN, WSCNN + entropy on rotated and
    on scaled digits -- as a local sweep (``sweep --tables 1 --launcher local``) at the scale of
    ``profile``, waiting for its jobs.

    The sweep's folder is ``sweeps/table1_<profile>_seeds<seed>`` beside ``checkpoint_dir``.
    Rerunning resumes every unfinished run from its checkpoint; a run whose result file is
    complete for these settings is not rerun. One progress line per run and epoch is printed as
    it arrives, then the table.

    Args:
        profile: ``quick`` ... ``paper`` (:mod:`wslib.profiles`).
        device: ``"cpu"`` or ``"cuda"`` (default: CUDA when present); all runs share it.
        jobs: processes at once (default: all eight on CUDA, one per CPU core on a CPU).
        out: where to print (default stdout).

    Returns:
        ``{(experiment, variant): result dict}`` of every run that finished.
    """
    runs = _cell_runs(TABLES[1], [seed], profile)
    folder = Path(checkpoint_dir).absolute().parent / "sweeps" / default_folder([1], [], profile, [seed]).name
    run_sweep(runs, folder, LaunchOptions("local", parallel=jobs, device=device), wait_for_jobs=True,
              results_dir=results_dir, checkpoint_dir=checkpoint_dir, out=out)
    return {(r.experiment, r.variant): saved for r in runs if (saved := r.complete(results_dir)) is not None}


def format_table1(results: dict[tuple[str, str], dict], profile: str) -> str:
    """Table 1 from results already loaded, ``{(experiment, variant): result}``: test accuracy
    (%) of each run next to the paper's."""
    runs, done = [], {}
    for _, _, exp, model, ent, theta in TABLES[1].cells():
        variant = _run_variant(exp, model, ent, theta, "invariant")
        saved = results.get((exp, variant))
        run = Run(exp, model, saved["seed"] if saved else 0, profile, ent, theta)
        runs.append(run)
        done[run] = saved
    return _format_tables(runs, done)
