"""A vectorized sweep on a dask cluster: a LocalCluster by default, a Slurm allocation with --slurm.

    python examples/ensemble-slurm.py                        # 2 local worker processes
    python examples/ensemble-slurm.py --slurm --queue normal --cores 4 --memory 16GB --jobs 8 --seeds 64
    python examples/ensemble-slurm.py --slurm --print-job-script   # the sbatch script, nothing submitted

The sweep is examples/ce-modadd.toml (modular addition p = 31) over learning rates x seeds,
run as ``overtone sweep --vectorize --scheduler ADDR`` does: each pack (members whose configs
differ only in per-member values) is one dask task, cut to fit the smallest worker's memory
(60% of its ``memory_limit``, or ``--pack-memory``). With ``--slurm`` the workers are Slurm
jobs started by dask-jobqueue's ``SLURMCluster``: each job runs ``--cores`` single-threaded
worker processes sharing ``--memory``, in this Python environment (overtone and its plugins
must be importable on the compute nodes: a shared file system). Results go to
``--out/ce-modadd-sweep/`` (``sweep.nc``, ``report.html``, one directory per member).
"""

from __future__ import annotations

import argparse
from pathlib import Path

CONFIG = Path(__file__).resolve().parent / "ce-modadd.toml"


def make_cluster(args: argparse.Namespace):
    """A ``SLURMCluster`` (``--slurm``: ``--jobs`` jobs of ``--cores`` one-thread worker processes)
    or a ``LocalCluster`` of ``--workers`` one-thread processes."""
    if args.slurm:
        from dask_jobqueue import SLURMCluster

        extra = [f"--account={args.account}"] if args.account else []
        return SLURMCluster(queue=args.queue, cores=args.cores, processes=args.cores, memory=args.memory,
                            walltime=args.walltime, job_extra_directives=extra,
                            job_script_prologue=["export OVERTONE_PROGRESS=0"])
    from dask.distributed import LocalCluster

    return LocalCluster(n_workers=args.workers, threads_per_worker=1, memory_limit=args.memory,
                        dashboard_address=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slurm", action="store_true", help="start workers as Slurm jobs (dask-jobqueue)")
    parser.add_argument("--queue", help="Slurm partition")
    parser.add_argument("--account", help="Slurm account")
    parser.add_argument("--cores", type=int, default=4, help="worker processes (one core each) per Slurm job")
    parser.add_argument("--jobs", type=int, default=2, help="Slurm jobs to start")
    parser.add_argument("--walltime", default="01:00:00")
    parser.add_argument("--memory", default="4GB", help="memory per Slurm job, or per local worker")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes (without --slurm)")
    parser.add_argument("--print-job-script", action="store_true", help="print the Slurm job script and stop")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--grid", action="append", default=None, help="default: optimizer.lr=0.001,0.003")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--pack-memory", default=None, help="e.g. 2GB (default: 60%% of a worker's memory)")
    parser.add_argument("--out", default="runs")
    args = parser.parse_args()
    cluster = make_cluster(args)
    if args.print_job_script:
        print(cluster.job_script())
        cluster.close()
        return
    from dask.distributed import Client
    from overtone.sweep import run_sweep

    with cluster, Client(cluster) as client:
        if args.slurm:
            cluster.scale(jobs=args.jobs)
        client.wait_for_workers(1)  # the default pack memory is read from the workers that have joined
        out = run_sweep(CONFIG, grid=args.grid or ["optimizer.lr=0.001,0.003"], seeds=args.seeds,
                        overrides=[f"train.steps={args.steps}", f"train.checkpoint_every={args.steps}"],
                        out=args.out, scheduler=cluster.scheduler_address, vectorize=True,
                        pack_memory=args.pack_memory)
    print(f"sweep finished: {out} (report: {out.parent / 'report.html'})")


if __name__ == "__main__":
    main()
