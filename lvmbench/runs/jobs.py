"""One job model for every multi-run command: a job is one training-and-scoring point.

A job is (the model and its resolved recipe - fold and training seed
included -, the dataset's sha256) and runs into one ordinary run directory
named by a hash of those fields (``<slug>-<hash>``).  ``suite run``, ``sweep``,
``run --folds``, ``run --model a,b,c`` and ``--seeds`` are lists of jobs
followed by one aggregation step that reads only finished run directories.

Jobs are cached by their key: a directory whose ``job.json`` names this
job's key and whose run finished is reused; one that was interrupted
resumes from its ``last.pt``; ``rerun`` runs it again from scratch.  A job
runs in this process (``--jobs 1``, today's behaviour) or in a worker of an
executor (:mod:`lvmbench.runs.executors`), which gets everything it needs
in the job itself: the recipe as data, the dataset's path and sha256, the
import paths this command trusted.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from lvmbench import workdir
from lvmbench.config import Recipe, recipe_from_dict
from lvmbench.errors import LvmbenchError, UsageError, interrupt_behind
from lvmbench.io import atomic_write_json, atomic_write_text, read_json, sha256_json
from lvmbench.result import Result

Log = Callable[[str], None]
JOB_FILE = "job.json"


@dataclass(frozen=True)
class Job:
    """One point of a multi-run command, as plain data (it crosses process and machine boundaries)."""

    label: str
    recipe: dict[str, Any]
    data: str
    dataset_sha256: str
    run_dir: str
    trusted: tuple[str, ...] = ()
    resume_hint: str = ""
    cwd: str = ""  # the command's working directory: relative paths mean the same in a worker

    @property
    def key(self) -> str:
        return job_key(self.recipe, self.dataset_sha256)


@dataclass
class JobResult:
    label: str
    run_dir: str
    status: str  # run | reused | resumed | failed
    error: str | None = None
    exit_code: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def job_key(recipe: dict[str, Any], dataset_sha256: str) -> str:
    """sha256 of what defines a job's result: the model, its whole resolved recipe, the dataset."""
    return sha256_json({"model": recipe["model"], "recipe": recipe, "dataset": dataset_sha256})


def job_dir(parent: Path, slug: str, recipe: Recipe, dataset_sha256: str) -> Path:
    """``PARENT/<slug>-<first 10 hex of the job key>``: a changed recipe is another directory, never a reuse."""
    return parent / f"{slug}-{job_key(recipe.to_dict(), dataset_sha256)[:10]}"


def make_job(label: str, recipe: Recipe, store: Any, run_dir: Path, trusted: tuple[str, ...] = (),
             resume_hint: str = "") -> Job:
    return Job(label, recipe.to_dict(), str(store.path), store.sha256, str(run_dir), tuple(sorted(trusted)),
               resume_hint, os.getcwd())


def finished(job: Job) -> bool:
    """The job's directory holds its own finished, complete run."""
    d = Path(job.run_dir)
    if not (d / "results.json").is_file() or workdir.incomplete(d) is not None or not (d / JOB_FILE).is_file():
        return False
    try:
        same = read_json(d / JOB_FILE, ValueError).get("key") == job.key
        status = Result.from_json(d).status
    except (ValueError, OSError, LvmbenchError):
        return False
    return same and status == "complete"


def resumable(job: Job) -> bool:
    d = Path(job.run_dir)
    try:
        same = (d / JOB_FILE).is_file() and read_json(d / JOB_FILE, ValueError).get("key") == job.key
    except (ValueError, OSError):
        return False
    return same and (d / "recipe.json").is_file()


def execute(job: Job, threads: int | None = None, log_file: bool = False, rerun: bool = False) -> JobResult:
    """Run one job (reuse it, resume it or start it), in this process or a worker; never raises but Ctrl-C."""
    from lvmbench.trust import trusted_imports

    t0 = time.perf_counter()
    if job.cwd and os.getcwd() != job.cwd:
        os.chdir(job.cwd)  # a worker process or Ray task: the paths are the command's
    if not rerun and finished(job):
        return JobResult(job.label, job.run_dir, "reused", extra=_headline(job))
    if threads:
        import torch

        torch.set_num_threads(threads)
    log = _file_log(Path(job.run_dir)) if log_file else print
    try:
        with trusted_imports(job.trusted):
            status = _run(job, log, rerun)
    except KeyboardInterrupt:
        raise
    except LvmbenchError as exc:
        return JobResult(job.label, job.run_dir, "failed", str(exc), exc.exit_code, time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - one job's failure must not end the others
        interrupt = interrupt_behind(exc)
        if interrupt is not None:
            raise interrupt from None
        _write_traceback(Path(job.run_dir))
        return JobResult(job.label, job.run_dir, "failed", f"unexpected {type(exc).__name__}: {exc}", 1,
                         time.perf_counter() - t0)
    return JobResult(job.label, job.run_dir, status, seconds=time.perf_counter() - t0, extra=_headline(job))


def _run(job: Job, log: Log, rerun: bool) -> str:
    """Train and score the job's point: resumed from its last.pt when it was interrupted, else from scratch."""
    from lvmbench.data.prepare import prepare, resolve_data
    from lvmbench.runs.resume import check_dataset, continue_point
    from lvmbench.runs.rundir import make_run_dir, scoped
    from lvmbench.runs.single import start_run
    from lvmbench.runtime import configure_threads, resolve_device

    recipe = recipe_from_dict(job.recipe, Path(job.run_dir) / JOB_FILE)
    store = resolve_data(job.data, log)
    check_dataset(store, job.dataset_sha256, Path(job.run_dir) / JOB_FILE)
    if recipe.train.threads:
        configure_threads(recipe)
    prep = prepare(store, recipe)
    device = resolve_device(recipe.train.device)
    hint = job.resume_hint or "run the same command again (finished jobs are reused, this one resumes from its last.pt)"

    @scoped
    def go() -> str:
        run_dir = Path(job.run_dir)
        if not rerun and resumable(job):
            continue_point(recipe, prep, run_dir, device, log, hint)
            return "resumed"
        make_run_dir(run_dir, recipe.model.name, overwrite=True)
        atomic_write_json(run_dir / JOB_FILE, {"key": job.key, **asdict(job)})
        start_run(recipe, prep, run_dir, device, log, resume_hint=hint)
        return "run"

    return go()


def _headline(job: Job) -> dict[str, Any]:
    try:
        m = Result.from_json(Path(job.run_dir)).metrics
    except (ValueError, OSError, LvmbenchError):
        return {}
    return {k: m.recorded(k) if m is not None else None for k in ("hit@5", "mrr")}


def _file_log(run_dir: Path) -> Log:
    """A worker's log: appended to ``RUN_DIR/job.log`` (workers must not interleave on one terminal)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "job.log"

    def log(msg: str) -> None:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(msg + "\n")

    return log


def _write_traceback(run_dir: Path) -> None:
    try:
        atomic_write_text(run_dir / "error.txt", traceback.format_exc())
    except OSError:
        pass


def run_jobs(jobs: list[Job], spec: Any, log: Log, rerun: bool = False, recipe_threads: int = 0,
             cuda: bool = False, resuming: bool = False) -> list[JobResult]:
    """Every job through the executor ``spec`` names; one result per job, in the jobs' order.

    Finished jobs are reused without being submitted (``rerun``: none is);
    the rest run where ``spec`` says, and each one's outcome is logged as it
    ends.  Ctrl-C stops the executor and re-raises with ``not_started`` (the
    labels of the jobs that never began) set on the exception: a job that was
    running keeps its last.pt, so the same command continues it.
    """
    from lvmbench.runs.executors import make_executor, threads_per_job

    results: dict[int, JobResult] = {}
    todo = []
    for i, job in enumerate(jobs):
        if not rerun and finished(job):
            results[i] = JobResult(job.label, job.run_dir, "reused", extra=_headline(job))
            log(f"{job.run_dir}: " + ("finished before the interrupt; kept as it is" if resuming
                                      else "finished before with the same job key; reused (--rerun runs it again)"))
        else:
            todo.append(i)
    where = "in this process" if spec.serial else (f"{spec.jobs} worker processes" if spec.kind == "local"
                                                   else f"Ray ({spec.ray_address or 'a local instance'})")
    log(f"jobs: {len(jobs)} ({len(results)} finished before and reused, {len(todo)} to run {where})")
    started: set[int] = set()
    if todo and not spec.serial:
        _check_portable([jobs[i] for i in todo])
    if todo:
        try:
            _submit_all(jobs, todo, spec, results, started, log, rerun, threads_per_job(spec, recipe_threads),
                        make_executor(spec, recipe_threads, cuda))
        except KeyboardInterrupt as exc:
            exc.not_started = [jobs[i].label for i in todo if i not in started]  # type: ignore[attr-defined]
            raise
    out = [results[i] for i in range(len(jobs))]
    counts = {s: sum(r.status == s for r in out) for s in ("reused", "run", "resumed", "failed")}
    log("jobs: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return out


def _check_portable(jobs: list[Job]) -> None:
    """A model registered in this process (``register_model``) does not exist in a worker: refuse, one line."""
    from lvmbench.models import registry

    for job in jobs:
        for name in [job.recipe["model"]["name"], *job.recipe["eval"].get("baselines", [])]:
            entry = registry.REGISTRY.get(name)
            if entry is not None and getattr(entry, "source", None) == "registered":
                raise UsageError(f"--model {name}: registered in this process (register_model), so a worker "
                                 "cannot build it; run with --jobs 1, or name it by an import path or an entry point")


def _submit_all(jobs: list[Job], todo: list[int], spec: Any, results: dict[int, JobResult], started: set[int],
                log: Log, rerun: bool, threads: int | None, executor: Any) -> None:
    import concurrent.futures as cf

    futures: dict[Any, int] = {}
    try:
        for n, i in enumerate(todo, 1):
            if spec.serial:
                log(f"=== [{n}/{len(todo)}] {jobs[i].label} -> {jobs[i].run_dir}")
                started.add(i)
            futures[executor.submit(execute, jobs[i], threads, not spec.serial, rerun)] = i
            if not spec.serial:
                log(f"submitted [{n}/{len(todo)}] {jobs[i].label} -> {jobs[i].run_dir} (log: job.log there)")
        for fut in cf.as_completed(futures):
            i = futures[fut]
            try:
                results[i] = fut.result()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - a worker lost (killed, out of memory): that job failed
                results[i] = JobResult(jobs[i].label, jobs[i].run_dir, "failed",
                                       f"worker lost ({type(exc).__name__}: {exc})", 1)
            _log_result(results[i], log)
    except KeyboardInterrupt:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _log_result(r: JobResult, log: Log) -> None:
    if not r.ok:
        log(f"FAILED {r.label}: {r.error} (exit code {r.exit_code}); the other jobs go on")
        return
    h5 = r.extra.get("hit@5")
    log(f"{r.status} {r.label}: " + (f"Hit@5 {100 * h5:.1f}%" if isinstance(h5, float) else "done")
        + (f" in {r.seconds:.0f}s" if r.seconds else ""))
