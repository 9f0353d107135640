"""The multiverse workflow on a real single-node SLURM cluster gives the local run's results, bit
for bit.

``tests/slurm/cluster.sh`` configures and starts munged, slurmctld and slurmd on this machine (and
stops them); ``tests/slurm/install.sh`` installs Debian's slurm-wlm and munge where it can (CI runs
it first). Without them, or without root, the test is skipped and says why.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pipeline_helpers import ROOT, copy_project, run_snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.pipeline]

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
TARGETS = ["results/example/models/multiverse.json", "results/example/tables/multiverse.csv"]

#: a small multiverse: 18 specs (PET-PEESE on a too-small subset among them), 2 chunks (the two
#: CPUs of the test node), 2 bootstrap draws under the null
SMALL = {
    "enabled": True,
    "which": {"design": ["all", "rct", "prepost"]},
    "how": {
        "structure": ["random", "three_level"],
        "method": ["REML"],
        "outliers": ["none", "studentized"],
        "bias": ["none", "pet_peese"],
    },
    "exclude": [{"outliers": "studentized", "bias": "pet_peese"}],
    "min_k_pet_peese": 20,
    "chunk_size": 9,
    "bootstrap": 2,
}


def _why_not() -> str | None:
    missing = [
        c
        for c in ("sbatch", "squeue", "slurmctld", "slurmd", "munged")
        if not shutil.which(c, path=SBIN)
    ]
    if missing:
        return (
            f"SLURM is not installed ({', '.join(missing)} missing; "
            "tests/slurm/install.sh installs it)"
        )
    if os.geteuid() != 0:
        return "the single-node SLURM test cluster must be started as root"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pinned in constraints.txt)"
    return None


def _project(dest: Path) -> Path:
    dest.mkdir()
    copy_project(dest)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["multiverse"] = SMALL
    (dest / "config" / "multiverse_small.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return dest


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A single-node SLURM cluster, stopped after the module's tests; its environment."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "PATH": SBIN, "SLURM_CONF": str(folder / "slurm.conf")}
    start = subprocess.run(
        ["bash", str(CLUSTER), "start", str(folder)], capture_output=True, text=True, env=env
    )
    if start.returncode == 3:
        pytest.skip(start.stderr.strip())
    assert start.returncode == 0, (
        f"the SLURM test cluster did not start:\n{start.stdout}\n{start.stderr}"
    )
    yield env
    subprocess.run(["bash", str(CLUSTER), "stop", str(folder)], capture_output=True, env=env)


def test_multiverse_on_slurm_is_identical_to_the_local_run(cluster, tmp_path):
    config = ["--configfile", "config/multiverse_small.yaml"]
    local = _project(tmp_path / "local")
    run_snakemake(local, *TARGETS, *config, check=True, cores=2)

    # the SLURM run starts from a copy of the local run without the multiverse's files (its data
    # steps are done, with their Snakemake records): the chunk jobs and the gather go to SLURM
    remote = tmp_path / "slurm"
    shutil.copytree(local, remote, symlinks=True)
    shutil.rmtree(remote / "results/example/multiverse")
    for path in TARGETS:
        (remote / path).unlink()
    cmd = [
        str(Path(sys.executable).with_name("snakemake")),
        "--workflow-profile",
        "workflow/profiles/slurm",
        *config,
        "--slurm-no-account",
        "--slurm-status-command",
        "squeue",
        # the executor first polls after 12 s and waits 10 s longer each time nothing finished;
        # a job here (two Snakemake start-ups and the step) takes 10-20 s
        "--slurm-init-seconds-before-status-checks",
        "12",
        "--latency-wait",
        "5",
        "--default-resources",
        "slurm_partition=debug",
        "runtime=10",
        "mem_mb=500",
        "--slurm-logdir",
        str(tmp_path / "slurm-logs"),
        "--nocolor",
        "--",
        *TARGETS,
    ]
    proc = subprocess.run(cmd, cwd=remote, capture_output=True, text=True, env=cluster, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    submitted = [line for line in output.splitlines() if "submitted with SLURM jobid" in line]
    assert len(submitted) == 3, output  # two chunks and the gather, each a SLURM job

    chunks = sorted((local / "results/example/multiverse/chunks").glob("*.json"))
    assert [c.name for c in chunks] == ["0.json", "1.json"]
    for path in [*TARGETS, *(str(c.relative_to(local)) for c in chunks)]:
        assert (remote / path).read_bytes() == (local / path).read_bytes(), path
    record = yaml.safe_load((local / TARGETS[0]).read_text(encoding="utf-8"))
    assert record["summary"]["n_specs"] == 18
    assert record["summary"]["bootstrap"]["draws"] == 2
    assert record["summary"]["status_counts"]["too_small"] >= 1
