"""Sweeps: what a sweep runs and where it stands -- its runs, the job that trains each run, and
the sweep's folder (the state of every run, its last progress line, the collected tables).

    python -m wslib.reproduce sweep --tables 1,3 --seeds 0,1,2 --profile paper --launcher slurm
    python -m wslib.reproduce sweep --status runs/sweeps/table1+3_paper_seeds0-1-2
    python -m wslib.reproduce sweep --experiments toy-shift,toy-c4 --seeds 0,1 --profile quick

A sweep is a list of :class:`Run` (one experiment, model and seed at one profile's scale) and
lives in one folder: ``sweep.json`` (the runs, the launcher and the job of every submission),
``jobs/`` (submitit's pickles and each job's log), ``checkpoints/`` (each run's training
checkpoint) and ``results/`` (each run's provenance JSON, the same file ``python -m
wslib.reproduce EXPERIMENT`` writes). Each run is one job of a job array: ``--launcher local``
runs the jobs as processes on this machine (submitit's ``LocalExecutor``), ``--launcher slurm``
submits them to SLURM. A job that is pre-empted or reaches its time limit is requeued by
submitit (:class:`SweepJob` is ``Checkpointable``) and resumes from its training checkpoint;
a job that was killed outright resumes from the same checkpoint when the sweep command runs
again, which submits only the runs without a complete result (and not those still queued or
running). When every run has finished, the sweep is *collected*: the paper's tables, its numbers
beside ours (mean ± std over the seeds).
"""
from __future__ import annotations

import getpass
import json
import math
import os
import socket
import statistics
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from ..profiles import settings
from .experiments import EXPERIMENTS, TABLES, Table
from .runner import (
    _FULL_SIZES,
    _PROGRESS,
    REPO_ROOT,
    _json_safe,
    _progress_printer,
    _result_path,
    _run_variant,
    run_experiment,
    write_result,
)

SWEEPS_DIR = REPO_ROOT / "runs" / "sweeps"
_MARK = "WSLIB-SWEEP "  # a job's own lines in its log: start (with pid and checkpoints), requeue, done

# --- what is run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One training run of a sweep: an experiment, a model (with its entropy weight and, for
    ``partial-rotated-mnist``, its angle) and a seed, at the scale of a profile."""

    experiment: str
    model: str
    seed: int
    profile: str
    lambda_ent: float = 0.0
    theta: float = 90.0

    @property
    def kind(self) -> str:
        return EXPERIMENTS[self.experiment].kind

    @property
    def variant(self) -> str:
        """The model part of the run's file names (as ``python -m wslib.reproduce`` writes them)."""
        return _run_variant(self.experiment, self.model, self.lambda_ent, self.theta, "invariant")

    @property
    def name(self) -> str:
        return f"{self.experiment}/{self.variant}/seed{self.seed}"

    @property
    def epochs(self) -> int:
        s = settings(self.profile)
        return {"mnist": s.mnist_epochs, "cifar": s.cifar_epochs, "toy": s.toy_epochs}[self.kind]

    def result_path(self, results_dir: str | Path) -> Path:
        return _result_path(Path(results_dir), self.experiment, self.variant, self.profile, self.seed)

    def checkpoints(self, checkpoint_dir: str | Path) -> list[Path]:
        """The run's training checkpoints on disk (toy runs keep one per restart)."""
        stem = f"{self.experiment}_{self.variant}_{self.profile}_seed{self.seed}.pt"
        return sorted(p for p in Path(checkpoint_dir).glob(stem + "*") if not p.name.endswith(".tmp"))

    def complete(self, results_dir: str | Path) -> dict | None:
        """The run's result if it is on disk and finished every epoch of this profile's settings."""
        try:
            saved = json.loads(self.result_path(results_dir).read_text())
        except (OSError, ValueError):
            return None
        ok = (saved.get("metrics", {}).get("epochs_trained") == self.epochs and saved.get("seed") == self.seed
              and saved.get("provenance", {}).get("profile_settings") == settings(self.profile).as_dict())
        return saved if ok else None


def _cell_runs(table: Table, seeds: Sequence[int], profile: str) -> list[Run]:
    return [Run(exp, model, seed, profile, ent, theta) for seed in seeds
            for _, _, exp, model, ent, theta in table.cells()]


def table_runs(tables: Sequence[int] = (), experiments: Sequence[str] = (), seeds: Sequence[int] = (0,),
               profile: str = "quick", models: Sequence[str] | None = None, lambda_ent: float = 0.0,
               theta: float = 90.0) -> list[Run]:
    """Every run of the given tables and experiments, for every seed, without duplicates.

    Args:
        tables: numbers of the paper's tables (1-4, ``TABLES``).
        experiments: further experiments by name (e.g. the toy problems), each with every model
            it compares (or those of ``models`` among them), at ``lambda_ent`` and ``theta``.
    """
    seeds = list(seeds)
    runs: list[Run] = []
    for t in tables:
        if t not in TABLES:
            raise ValueError(f"there is no table {t}; the paper's tables are {', '.join(map(str, TABLES))}")
        runs += _cell_runs(TABLES[t], seeds, profile)
    for e in experiments:
        if e not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {e!r}; choose from {', '.join(EXPERIMENTS)}")
        chosen = [m for m in EXPERIMENTS[e].models if models is None or m in models]
        if not chosen:
            raise ValueError(f"{e} compares {', '.join(EXPERIMENTS[e].models)}; none of {', '.join(models)}")
        runs += [Run(e, m, seed, profile, lambda_ent, theta) for seed in seeds for m in chosen]
    return list(dict.fromkeys(runs))


# --- one job: one run ---------------------------------------------------------------------------

try:  # submitit is an optional dependency (pip install -e ".[cluster]")
    from submitit.helpers import Checkpointable as _Checkpointable
    from submitit.helpers import DelayedSubmission as _DelayedSubmission
except ImportError:  # pragma: no cover - exercised only without the extra
    _Checkpointable, _DelayedSubmission = object, None


class SweepJob(_Checkpointable):
    """The callable that one job of a sweep runs: train ``run``, write its result JSON.

    Its state is on disk, not in the object: the training loop writes an atomic checkpoint
    after every epoch and resumes from it. So when submitit signals a pre-emption or the time
    limit, ``checkpoint()`` hands back this same callable, submitit requeues the job, and the
    requeued job continues from the last finished epoch.
    """

    def __init__(self, run: Run, results_dir: str, checkpoint_dir: str, device: str | None = None,
                 threads: int | None = None) -> None:
        self.run, self.results_dir, self.checkpoint_dir = run, str(results_dir), str(checkpoint_dir)
        self.device, self.threads = device, threads

    def __call__(self) -> str:
        import torch

        threads = self.threads or int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0)
        if threads:
            torch.set_num_threads(threads)
        r = self.run
        _mark("start", run=r.name, host=socket.gethostname(), pid=os.getpid(),
              resume_from=[p.name for p in r.checkpoints(self.checkpoint_dir)])
        callback = None
        if r.kind != "toy":
            s = settings(r.profile)
            train_size = s.mnist_train_size if r.kind == "mnist" else s.cifar_train_size
            batch = s.mnist_batch_size if r.kind == "mnist" else s.cifar_batch_size
            callback = _progress_printer((train_size or _FULL_SIZES[r.kind][0]) // batch, r.epochs)
        result = run_experiment(r.experiment, r.model, r.profile, r.seed, r.lambda_ent, r.theta, self.device,
                                self.checkpoint_dir, progress=r.kind == "toy", callback=callback)
        path = write_result(result, self.results_dir)
        _mark("done", run=r.name, test_acc=result["metrics"]["test_acc"],
              epochs=result["metrics"]["epochs_trained"], path=str(path))
        return str(path)

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Called by submitit on pre-emption or timeout: requeue this same job."""
        _mark("requeue", run=self.run.name, checkpoints=[p.name for p in self.run.checkpoints(self.checkpoint_dir)])
        return _DelayedSubmission(self, *args, **kwargs)

    def __repr__(self) -> str:
        return f"SweepJob({self.run.name}, profile {self.run.profile})"


def _mark(event: str, **fields: Any) -> None:
    print(_MARK + json.dumps(_json_safe({"event": event, **fields})), flush=True)


# --- a sweep's folder ---------------------------------------------------------------------------


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def default_folder(tables: Sequence[int], experiments: Sequence[str], profile: str, seeds: Sequence[int]) -> Path:
    """The folder of a sweep under ``runs/sweeps``, named after what it runs, so that the same
    command finds the same folder again."""
    what = "+".join([f"table{'+'.join(map(str, tables))}"] if tables else []) + \
        ("+" if tables and experiments else "") + "+".join(experiments)
    return SWEEPS_DIR / f"{what}_{profile}_seeds{'-'.join(map(str, seeds))}"


class Sweep:
    """A sweep's folder: its runs, where they write, and the job of every submission."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).absolute()
        self.manifest = self.folder / "sweep.json"
        self.jobs_dir = self.folder / "jobs"
        self.runs: list[Run] = []
        self.jobs: dict[str, list[str]] = {}  # run name -> job ids, oldest first
        self.launcher = "local"
        self.results_dir = self.folder / "results"
        self.checkpoint_dir = self.folder / "checkpoints"
        if self.manifest.exists():
            saved = json.loads(self.manifest.read_text())
            self.runs = [Run(**r) for r in saved["runs"]]
            self.jobs = saved.get("jobs", {})
            self.launcher = saved.get("launcher", "local")
            self.results_dir = Path(saved["results_dir"])
            self.checkpoint_dir = Path(saved["checkpoint_dir"])

    def exists(self) -> bool:
        return self.manifest.exists()

    def save(self) -> None:
        _write_json(self.manifest, {"runs": [asdict(r) for r in self.runs], "launcher": self.launcher,
                                    "results_dir": str(self.results_dir),
                                    "checkpoint_dir": str(self.checkpoint_dir), "jobs": self.jobs})

    def add(self, runs: Sequence[Run]) -> None:
        self.runs = list(dict.fromkeys([*self.runs, *runs]))

    def last_job(self, run: Run) -> str | None:
        ids = self.jobs.get(run.name)
        return ids[-1] if ids else None

    def log(self, job_id: str) -> Path:
        from submitit.core.utils import JobPaths

        return JobPaths(self.jobs_dir, job_id=job_id, task_id=0).stdout

    def states(self) -> dict[str, tuple[str, str | None]]:
        """``{run name: (state, job id)}``; a state is ``done`` (a complete result),
        ``pending`` / ``running`` (its job is alive), ``failed`` (its job raised),
        ``interrupted`` (its job ended without a result) or ``not submitted``."""
        alive = _alive_jobs(self)
        out = {}
        for run in self.runs:
            job = self.last_job(run)
            if run.complete(self.results_dir) is not None:
                state = "done"
            elif job is None:
                state = "not submitted"
            elif job in alive:
                state = alive[job]
            elif _job_error(self, job) is not None:
                state = "failed"
            else:
                state = "interrupted"
            out[run.name] = (state, job)
        return out


def _alive_jobs(sweep: Sweep) -> dict[str, str]:
    """Which of the sweep's jobs are queued or running: ``{job id: "pending" | "running"}``."""
    ids = {j for js in sweep.jobs.values() for j in js}
    if not ids:
        return {}
    if sweep.launcher == "local":  # a local job's id is its controller's process id
        out = {}
        for j in ids:
            try:
                cmd = Path(f"/proc/{int(j)}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
            if "submitit.local._local" in cmd and str(sweep.jobs_dir) in cmd:
                out[j] = "running"
        return out
    try:
        proc = subprocess.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i %T"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        raise RuntimeError(f"cannot ask SLURM which jobs are queued (squeue: {err})") from None
    if proc.returncode != 0:
        raise RuntimeError(f"cannot ask SLURM which jobs are queued: {proc.stderr.strip()}")
    out = {}
    for line in proc.stdout.splitlines():
        job, _, state = line.strip().partition(" ")
        if job in ids:
            out[job] = "pending" if state in ("PENDING", "REQUEUED", "CONFIGURING") else "running"
    return out


def _job_error(sweep: Sweep, job_id: str) -> str | None:
    """The last line of the traceback of a job that raised, else ``None``."""
    from submitit.core.utils import JobPaths, pickle_load

    pkl = JobPaths(sweep.jobs_dir, job_id=job_id, task_id=0).result_pickle
    try:
        outcome, value = pickle_load(pkl)
    except Exception:  # noqa: BLE001 - no result pickle (or an unreadable one): no error known
        return None
    if outcome != "error":
        return None
    lines = [line for line in str(value).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "error"


def _progress_line(sweep: Sweep, run: Run, job: str | None) -> str:
    """The last line of progress in the log of a run's job, in words."""
    saved = run.complete(sweep.results_dir)
    if saved is not None:
        m = saved["metrics"]
        return f"test accuracy {m['test_acc']:.4f} after {m['epochs_trained']} epochs"
    if job is None:
        return ""
    error = _job_error(sweep, job)
    if error:
        return error
    try:
        text = sweep.log(job).read_text(errors="replace")
    except OSError:
        return "no log yet"
    last = ""
    for raw in text.replace("\r", "\n").splitlines():
        line = raw.strip()
        if line.startswith(_PROGRESS):
            last = _format_progress(json.loads(line[len(_PROGRESS):]))
        elif line.startswith(_MARK):
            mark = json.loads(line[len(_MARK):])
            if mark["event"] == "start":
                last = "started" + (f", resuming from {', '.join(mark['resume_from'])}" if mark["resume_from"] else "")
            elif mark["event"] == "requeue":
                last = "pre-empted or timed out: requeued"
        elif line and not line.startswith(("submitit ", "WARNING", "INFO")):
            last = line
    return last


def _format_progress(p: dict) -> str:
    acc = f"{p['test_acc']:.4f}" if p.get("test_acc") is not None else "-"
    rate = f", {p['steps_per_s']:.1f} steps/s" if p.get("steps_per_s") else ""
    return f"epoch {p['epoch']}/{p['epochs']}: train loss {p['train_loss']:.4f}, test accuracy {acc}{rate}"


def format_status(sweep: Sweep) -> str:
    """One line per run: its state, its job and its last progress line."""
    states = sweep.states()
    counts: dict[str, int] = {}
    for state, _ in states.values():
        counts[state] = counts.get(state, 0) + 1
    width = max((len(r.name) for r in sweep.runs), default=10)
    lines = [f"sweep {sweep.folder} ({sweep.launcher}, {len(sweep.runs)} runs): "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))]
    for run in sweep.runs:
        state, job = states[run.name]
        lines.append(f"  {state:<13} {run.name:<{width}}  job {job or '-':<12} {_progress_line(sweep, run, job)}")
    return "\n".join(lines)


# --- collecting: the tables ---------------------------------------------------------------------


def _mean_std(values: list[float]) -> str:
    pct = [100 * v for v in values if v is not None and math.isfinite(v)]
    if not pct:
        return "–"
    if len(pct) == 1:
        return f"{pct[0]:.2f}"
    return f"{statistics.mean(pct):.2f} ± {statistics.stdev(pct):.2f}"


def format_tables(runs: list[Run], results_dir: str | Path) -> str:
    """Test accuracy (%) of every finished run, as the paper's tables (ours, mean ± std over the
    seeds, beside the paper's), then the runs of experiments outside them, one line per model."""
    return _format_tables(runs, {r: r.complete(results_dir) for r in runs})


def _format_tables(runs: list[Run], done: dict[Run, dict | None]) -> str:
    blocks, shown = [], set()
    profiles = sorted({r.profile for r in runs})
    for table in TABLES.values():
        cells = table.cells()
        mine = [r for r in runs if any((r.experiment, r.model, r.lambda_ent, r.theta) == (e, m, ent, th)
                                       for _, _, e, m, ent, th in cells)]
        if not mine:
            continue
        shown.update(mine)
        seeds = sorted({r.seed for r in mine})
        lines = [f"{table.title}, profile {', '.join(profiles)}, seeds {', '.join(map(str, seeds))}: "
                 "test accuracy %, ours (paper's)"]
        cols = [c[0] for c in table.columns]
        lines.append(f"{'model':<20}" + "".join(f"{c:>30}" for c in cols))
        all_paper = True
        for row, model, ent in table.rows:
            out = []
            for col, exp, theta in table.columns:
                if model not in EXPERIMENTS[exp].models:
                    out.append("")
                    continue
                cell_runs = [r for r in mine if (r.experiment, r.model, r.lambda_ent, r.theta) == (exp, model, ent, theta)]
                results = [done[r] for r in cell_runs if done[r] is not None]
                all_paper = all_paper and len(results) == len(cell_runs) and all(
                    x.get("paper_scale") is True for x in results)
                ours = "not run" if not results else _mean_std([x["metrics"]["test_acc"] for x in results])
                if results and len(results) < len(cell_runs):
                    ours += f" [{len(results)}/{len(cell_runs)} seeds]"
                out.append(f"{ours} ({table.paper.get((col, row), '–')})")
            lines.append(f"{row:<20}" + "".join(f"{c:>30}" for c in out))
        lines.append("every run at the paper's scale (paper_scale: true)" if all_paper else
                     "not at the paper's scale: these numbers are not comparable with the paper's")
        blocks.append("\n".join(lines))
    rest = [r for r in runs if r not in shown]
    if rest:
        lines = [f"Other experiments, profile {', '.join(profiles)}: test accuracy %, mean ± std over seeds"]
        groups: dict[tuple[str, str], list[Run]] = {}
        for r in rest:
            groups.setdefault((r.experiment, r.variant), []).append(r)
        for (exp, variant), rs in groups.items():
            results = [done[r] for r in rs if done[r] is not None]
            ours = "not run" if not results else _mean_std([x["metrics"]["test_acc"] for x in results])
            lines.append(f"{exp + ' / ' + variant:<40} {ours:>16}   ({len(results)} of {len(rs)} seeds, "
                         f"{EXPERIMENTS[exp].paper})")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
