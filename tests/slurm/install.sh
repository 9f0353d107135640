#!/usr/bin/env bash
# Install what the SLURM test needs (Debian: slurm-wlm, munge), when it can.
#
# Exits 0 when slurmctld, slurmd, sbatch and munged are installed (already, or now); otherwise
# prints "skipped: ..." and exits 1 -- the SLURM test (tests/test_multiverse_slurm.py) is then
# skipped with the same reason. Needs root and apt-get; nothing else is changed.
set -uo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

installed() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v munged >/dev/null
}

if installed; then
    echo "SLURM is installed: $(sbatch --version 2>/dev/null || echo sbatch), $(munged --version 2>/dev/null | head -n1)"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "skipped: SLURM is not installed and installing it needs root; the SLURM test will be skipped"
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "skipped: SLURM is not installed and there is no apt-get; the SLURM test will be skipped"
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge; } >/tmp/slurm-install.log 2>&1; then
    echo "skipped: apt-get could not install slurm-wlm and munge (log: /tmp/slurm-install.log); the SLURM test will be skipped"
    tail -n 5 /tmp/slurm-install.log
    exit 1
fi
if installed; then
    echo "SLURM installed: $(sbatch --version 2>/dev/null)"
    exit 0
fi
echo "skipped: slurm-wlm and munge were installed but slurmctld/slurmd/sbatch/munged are missing; the SLURM test will be skipped"
exit 1
