"""Sweeps of the paper's experiments through submitit: locally, and on a real SLURM scheduler.

The job tests run the quick profile's smallest experiment (toy-shift-partial: one learned
layer, 30 epochs, 3 restarts) and interrupt their own jobs only: they read each job's process id
from the line the job prints first in its own log.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wslib import profiles, reproduce
from wslib.reproduce import TABLES, Run, Sweep, format_tables, table_runs
from wslib.reproduce.sweep import default_folder

ROOT = Path(__file__).resolve().parents[1]
SWEEP = [sys.executable, "-m", "wslib.reproduce", "sweep"]
EXPERIMENT = "toy-shift-partial"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


# --- what a sweep runs, and its tables (no jobs) --------------------------------------------------


def test_tables_cover_the_papers_rows():
    runs = table_runs([1, 3], seeds=[0, 1, 2], profile="paper")
    assert len(runs) == len(set(runs)) == 3 * (8 + 4)
    assert {r.variant for r in runs if r.experiment == "rotated-mnist"} == {"cnn", "gcnn", "wscnn", "wscnn-ent0.01"}
    assert {r.variant for r in runs if r.experiment == "partial-rotated-mnist"} == \
        {"gcnn-theta90", "wscnn-theta90", "gcnn-theta180", "wscnn-theta180"}
    assert [len(TABLES[t].cells()) for t in (1, 2, 3, 4)] == [8, 3, 4, 3]
    # a run named twice (a table and --experiments) is run once
    both = table_runs([1], ["rotated-mnist"], seeds=[0], profile="quick")
    assert len(both) == 8
    with pytest.raises(ValueError, match="there is no table 5"):
        table_runs([5])


def test_default_folder_is_the_same_for_the_same_command():
    a = default_folder([1, 3], [], "paper", [0, 1, 2])
    assert a == default_folder([1, 3], [], "paper", [0, 1, 2])
    assert a.name == "table1+3_paper_seeds0-1-2" and a.parent.parent.name == "runs"
    assert default_folder([], ["toy-c4"], "quick", [0]).name == "toy-c4_quick_seeds0"


def _fake_result(results_dir: Path, run: Run, acc: float, epochs: int | None = None) -> None:
    path = run.result_path(results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "experiment": run.experiment, "model": run.variant, "profile": run.profile, "seed": run.seed,
        "paper_scale": False, "metrics": {"test_acc": acc, "epochs_trained": run.epochs if epochs is None else epochs},
        "provenance": {"profile_settings": profiles.settings(run.profile).as_dict()}}))


def test_collected_table_shows_mean_and_std_over_seeds_beside_the_paper(tmp_path):
    runs = table_runs([1], seeds=[0, 1], profile="quick")
    accs = {0: 0.90, 1: 0.80}
    for r in runs:
        if not (r.experiment == "scaled-mnist" and r.model == "cnn"):
            _fake_result(tmp_path, r, accs[r.seed])
    # one seed of one cell finished only half its epochs: not complete, not counted
    half = Run("scaled-mnist", "cnn", 0, "quick")
    _fake_result(tmp_path, half, 0.5, epochs=0)
    assert half.complete(tmp_path) is None
    table = format_tables(runs, tmp_path)
    rotated_cnn = next(line for line in table.splitlines() if line.startswith("CNN"))
    assert "85.00 ± 7.07 (98.48 ± .08)" in rotated_cnn  # mean ± sample std of 90 % and 80 %
    assert "not run (99.30 ± .01)" in rotated_cnn
    assert "not comparable with the paper's" in table


def test_bad_arguments_fail_before_any_job(tmp_path, capsys):
    assert reproduce.main(["sweep", "--profile", "quick", "--folder", str(tmp_path / "s")]) == 2
    assert "--tables" in capsys.readouterr().err
    assert reproduce.main(["sweep", "--tables", "1,x", "--folder", str(tmp_path / "s")]) == 2
    assert reproduce.main(["sweep", "--experiments", "toy-nothing", "--folder", str(tmp_path / "s")]) == 2
    assert reproduce.main(["sweep", "--tables", "1", "--parallel", "0", "--folder", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "toy-nothing" in err and "--parallel" in err
    assert not (tmp_path / "s").exists()


def test_cifar_tables_offline_fail_with_the_datasets_message(tmp_path, capsys):
    from wslib.data.common import data_folder, default_root

    if (data_folder(default_root(), create=False) / "cifar-10-batches-py").exists():
        pytest.skip("CIFAR-10 is on disk here, so it is not unavailable")
    folder = tmp_path / "s"
    assert reproduce.main(["sweep", "--tables", "2", "--profile", "quick", "--folder", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: CIFAR-10 is unavailable") and len(err.strip().splitlines()) == 1
    assert not (folder / "jobs").exists() or not any((folder / "jobs").glob("*submitted.pkl"))


def test_local_jobs_see_the_gpus_only_for_gpu_runs(tmp_path, monkeypatch):
    import torch

    from wslib.reproduce.launch import LaunchOptions, _defaults, _executor

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    sweep = Sweep(tmp_path / "s")
    on_gpu = _executor(sweep, _defaults(LaunchOptions("local"), "quick", 8), 8)
    assert on_gpu.parameters["gpus_per_node"] == 2 and tuple(on_gpu.parameters["visible_gpus"]) == (0, 1)
    on_cpu = _executor(sweep, _defaults(LaunchOptions("local", device="cpu"), "quick", 8), 8)
    assert on_cpu.parameters["gpus_per_node"] == 0
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert tuple(_executor(sweep, _defaults(LaunchOptions("local"), "quick", 8), 8).parameters["visible_gpus"]) == (3,)


def test_slurm_jobs_ask_for_what_the_profile_needs(tmp_path):
    from wslib.reproduce.launch import LaunchOptions, _defaults

    paper = _defaults(LaunchOptions("slurm"), "paper", 24)
    assert (paper.gpus_per_job, paper.cpus_per_job, paper.mem_gb, paper.time_min, paper.device) == \
        (1, 8, 32, 24 * 60, "cuda")
    quick = _defaults(LaunchOptions("slurm", partition="debug", parallel=3), "quick", 2)
    assert (quick.gpus_per_job, quick.device, quick.parallel, quick.partition) == (0, "cpu", 3, "debug")


# --- jobs ---------------------------------------------------------------------------------------


def _until(condition, timeout: float, what: str, proc: subprocess.Popen | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the sweep exited ({proc.returncode}) before {what}:\n{proc.stdout.read()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _marks(sweep: Sweep, run: Run, event: str) -> list[dict]:
    """The job's own lines of ``event`` in the log of the run's latest job."""
    job = sweep.last_job(run)
    if job is None or not sweep.log(job).exists():
        return []
    lines = sweep.log(job).read_text(errors="replace").replace("\r", "\n").splitlines()
    return [json.loads(x.split(" ", 1)[1]) for x in lines if x.startswith("WSLIB-SWEEP ") and f'"{event}"' in x]


def _job_pid(folder: Path, run: Run) -> int:
    """The process id of the run's latest job, once it has started its third restart."""
    def started():
        sweep = Sweep(folder)
        ckpt = folder / "checkpoints" / f"{run.experiment}_{run.variant}_quick_seed{run.seed}.pt.restart2"
        marks = _marks(sweep, run, "start") if sweep.exists() else []
        return marks[-1]["pid"] if marks and ckpt.exists() else None
    return started


def _check_complete(folder: Path, runs: list[Run]) -> None:
    sweep = Sweep(folder)
    for r in runs:
        saved = r.complete(sweep.results_dir)
        assert saved is not None, r.name
        assert saved["metrics"]["epochs_trained"] == profiles.settings("quick").toy_epochs
        assert len(saved["metrics"]["restart_train_losses"]) == profiles.settings("quick").toy_restarts
        assert saved["provenance"]["command"].startswith(f"python -m wslib.reproduce {EXPERIMENT}")


def test_local_sweep_survives_preemption_and_a_killed_job(tmp_path, capsys):
    """Two runs as local jobs: one is pre-empted (SIGUSR2, submitit's signal) and requeues itself;
    the other is killed (SIGKILL). Rerunning the command resubmits only the killed run, which
    resumes from its checkpoints; then every result is complete and the table is printed."""
    folder = tmp_path / "sweep"
    cmd = SWEEP + ["--experiments", EXPERIMENT, "--seeds", "0,1", "--profile", "quick", "--folder", str(folder),
                   "--parallel", "2"]
    runs = [Run(EXPERIMENT, "wscnn", s, "quick") for s in (0, 1)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT)
    try:
        preempted = _until(_job_pid(folder, runs[0]), 120, "seed 0's third restart", first)
        os.kill(preempted, signal.SIGUSR2)
        killed = _until(_job_pid(folder, runs[1]), 120, "seed 1's third restart", first)
        os.kill(killed, signal.SIGKILL)
        out, _ = first.communicate(timeout=180)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 1, out
    assert "requeued" in out and f"[{runs[1].name}] interrupted" in out, out
    sweep = Sweep(folder)
    # the pre-empted job requeued itself and resumed from its checkpoints, as the same job
    assert len(sweep.jobs[runs[0].name]) == 1
    starts = _marks(sweep, runs[0], "start")
    assert len(starts) == 2 and starts[0]["resume_from"] == [] and len(starts[1]["resume_from"]) == 3
    assert runs[0].complete(sweep.results_dir) is not None and runs[1].complete(sweep.results_dir) is None

    assert reproduce.main(["sweep", "--status", str(folder)]) == 1
    status = capsys.readouterr().out.splitlines()
    assert any(line.split()[:2] == ["interrupted", runs[1].name] for line in status), status
    assert any(line.split()[:2] == ["done", runs[0].name] for line in status), status

    second = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=180)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 done, 0 queued or running, 1 to submit" in second.stdout
    sweep = Sweep(folder)
    assert len(sweep.jobs[runs[0].name]) == 1 and len(sweep.jobs[runs[1].name]) == 2
    resumed = _marks(sweep, runs[1], "start")
    assert len(resumed) == 1 and len(resumed[0]["resume_from"]) == 3  # restarts 0, 1 done; 2 part-way
    _check_complete(folder, runs)
    assert f"{EXPERIMENT} / wscnn" in second.stdout and "2 of 2 seeds" in second.stdout

    assert reproduce.main(["sweep", *cmd[len(SWEEP):]]) == 0  # a third time: nothing left to submit
    assert "2 done, 0 queued or running, 0 to submit" in capsys.readouterr().out


# --- the same on a real SLURM scheduler -----------------------------------------------------------


@pytest.fixture(scope="module")
def slurm():
    """A one-machine SLURM cluster (partition "debug"), started by tests/slurm/start_single_node.sh.

    Skips, with the reason, where it cannot start -- unless WSLIB_REQUIRE_SLURM=1 (set by .ci/run
    once it has installed SLURM), where that is a failure."""
    def unavailable(reason: str):
        if os.environ.get("WSLIB_REQUIRE_SLURM") == "1":
            pytest.fail(f"SLURM is required here but {reason}")
        pytest.skip(f"no SLURM cluster: {reason}")

    if os.name != "posix" or os.geteuid() != 0:
        unavailable("the single-node cluster needs root to start")
    if shutil.which("slurmctld") is None or shutil.which("munged") is None:
        unavailable("slurm-wlm and munge are not installed (tests/slurm/start_single_node.sh --install)")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(["bash", str(ROOT / "tests" / "slurm" / "start_single_node.sh")],
                              capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        unavailable("tests/slurm/start_single_node.sh did not finish in 90 s")
    if proc.returncode != 0:
        last = (proc.stdout + proc.stderr).strip().splitlines()
        unavailable(f"tests/slurm/start_single_node.sh failed: {last[-1] if last else proc.returncode}")
    return {"partition": "debug", "start_s": time.monotonic() - t0}


def _squeue(job: str, fmt: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job, "-o", fmt], capture_output=True, text=True).stdout.strip()


def test_slurm_sweep_is_a_job_array_that_requeues_and_resumes(slurm, tmp_path, capsys):
    """Two runs as one SLURM job array. One job gets SLURM's pre-emption signal (SIGUSR2, as
    before a time limit); submitit checkpoints it and `scontrol requeue`s it, and the requeued
    job resumes from its checkpoints. The command then collects both results into the table."""
    folder = tmp_path / "sweep"
    cmd = SWEEP + ["--experiments", EXPERIMENT, "--seeds", "0,1", "--profile", "quick", "--folder", str(folder),
                   "--launcher", "slurm", "--partition", slurm["partition"], "--time", "10"]
    runs = [Run(EXPERIMENT, "wscnn", s, "quick") for s in (0, 1)]
    submitted = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    sweep = Sweep(folder)
    jobs = [sweep.last_job(r) for r in runs]
    try:
        assert submitted.returncode == 1, submitted.stdout + submitted.stderr  # submitted, not yet done
        assert "as SLURM job array" in submitted.stdout and "--status" in submitted.stdout
        array = {j.split("_")[0] for j in jobs}
        assert len(array) == 1 and sorted(j.split("_")[1] for j in jobs) == ["0", "1"]  # one array, two tasks

        _until(_job_pid(folder, runs[1]), 150, "seed 1's third restart")
        subprocess.run(["scancel", "--signal=USR2", jobs[1]], check=True)
        _until(lambda: _marks(Sweep(folder), runs[1], "requeue"), 60, "the requeue")
        # SLURM holds a requeued job for about two minutes before it may start again; let it start now
        _until(lambda: _squeue(jobs[1], "%T %r") == "PENDING BeginTime", 60, "the job back in the queue")
        assert reproduce.main(["sweep", "--status", str(folder)]) == 1
        status = [line.split() for line in capsys.readouterr().out.splitlines()]
        assert ["pending", runs[1].name, "job", jobs[1]] in [line[:4] for line in status], status
        subprocess.run(["scontrol", "update", f"JobId={jobs[1]}", "StartTime=now"], check=True)

        collected = subprocess.run(cmd + ["--wait"], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=240)
        assert collected.returncode == 0, collected.stdout + collected.stderr
        assert "0 to submit" in collected.stdout and "2 of 2 seeds" in collected.stdout
    finally:
        subprocess.run(["scancel", *[j for j in jobs if j]], capture_output=True)
    sweep = Sweep(folder)
    assert [len(sweep.jobs[r.name]) for r in runs] == [1, 1]  # the requeue kept the job
    starts = _marks(sweep, runs[1], "start")
    assert len(starts) == 2 and len(starts[1]["resume_from"]) == 3
    _check_complete(folder, runs)
