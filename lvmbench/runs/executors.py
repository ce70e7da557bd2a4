"""Where jobs run: this process, worker processes on this machine, or a Ray cluster.

Every executor has the ``concurrent.futures.Executor`` shape (``submit`` ->
``Future``), the one submitit and Dask expose too, so the job loop does not
know which it talks to:

* ``local`` with ``--jobs 1`` (the default): each job in this process, one
  after another - today's behaviour, bit for bit;
* ``local`` with ``--jobs N``: N worker processes (spawned, so no thread
  state is inherited); the machine's cores are divided between them unless
  the recipe fixes ``train.threads``;
* ``ray`` (``pip install -e ".[ray]"``): each job a Ray task on the cluster
  at ``--ray-address`` (a local instance when none is given), asking for
  ``train.threads`` CPUs (1 when unset) and one GPU when the device is CUDA.

Torch's float sums depend on the thread count, so the same job run with 1
and with 2 threads can differ in the last digits; fix ``train.threads`` to
get identical numbers from every executor (the tests do).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable

from lvmbench.errors import UsageError


@dataclass(frozen=True)
class ExecutorSpec:
    """Where a command's jobs run (``--executor``, ``--jobs``, ``--ray-address``) and whether finished ones rerun."""

    kind: str = "local"  # local | ray
    jobs: int = 1
    ray_address: str | None = None
    rerun: bool = False

    def check(self) -> None:
        if self.kind not in ("local", "ray"):
            raise UsageError(f"--executor {self.kind}: choose local or ray")
        if self.jobs < 1:
            raise UsageError(f"--jobs {self.jobs}: at least 1 (1 runs the jobs one after another in this process)")
        if self.ray_address and self.kind != "ray":
            raise UsageError("--ray-address goes with --executor ray")
        if self.kind == "ray":
            _import_ray()
            if self.ray_address:
                _probe(self.ray_address)

    @property
    def serial(self) -> bool:
        return self.kind == "local" and self.jobs == 1


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError('--executor ray needs the ray extra: pip install -e ".[ray]"') from None
    return ray


def _probe(address: str, timeout: float = 5.0) -> None:
    """A TCP connection to ``[ray://]host:port`` within ``timeout`` (Ray itself retries for minutes)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address {address}: expected host:port, ray://host:port or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UsageError(f"--ray-address {address}: cannot reach a Ray cluster there ({exc.strerror or exc}); "
                         "start one with `ray start --head` or leave the address out for a local instance") from None


class InProcess(cf.Executor):
    """``submit`` runs the call at once, in this process; the future is already done."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - delivered through the future, as any executor would
            fut.set_exception(exc)
        return fut


class RayExecutor(cf.Executor):
    """Each call a Ray task on the cluster (``address``) or a local instance."""

    def __init__(self, address: str | None, cpus: int, gpus: int):
        ray = self._ray = _import_ray()
        self._owned = not ray.is_initialized()  # a Ray this process already joined (a notebook, a test) stays up
        try:
            if self._owned and address:
                ray.init(address=address, log_to_driver=False, include_dashboard=False)
            elif self._owned:
                ray.init(num_cpus=os.cpu_count(), log_to_driver=False, include_dashboard=False)
        except Exception as exc:  # noqa: BLE001 - ray raises ConnectionError, RuntimeError, ValueError...
            raise UsageError(f"--ray-address {address}: cannot connect to a Ray cluster ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        self._options = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": 0}

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        remote = self._ray.remote(fn).options(**self._options)
        return remote.remote(*args, **kwargs).future()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._owned:
            self._ray.shutdown()


def threads_per_job(spec: ExecutorSpec, recipe_threads: int) -> int | None:
    """The torch threads each job gets: the recipe's when set; else the cores shared out (None: leave as is)."""
    if recipe_threads:
        return recipe_threads
    if spec.kind == "local" and spec.jobs > 1:
        return max(1, (os.cpu_count() or 1) // spec.jobs)
    return 1 if spec.kind == "ray" else None


def make_executor(spec: ExecutorSpec, recipe_threads: int, cuda: bool) -> cf.Executor:
    spec.check()
    if spec.serial:
        return InProcess()
    if spec.kind == "local":
        return cf.ProcessPoolExecutor(max_workers=spec.jobs, mp_context=multiprocessing.get_context("spawn"))
    return RayExecutor(spec.ray_address, threads_per_job(spec, recipe_threads) or 1, 1 if cuda else 0)
