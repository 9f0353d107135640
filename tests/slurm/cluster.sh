#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the SLURM test of the multiverse workflow.
#
#   tests/slurm/cluster.sh start [DIR]   configure and start munged, slurmctld and slurmd
#   tests/slurm/cluster.sh stop  [DIR]   stop them (by the process ids they wrote in DIR)
#   tests/slurm/cluster.sh env   [DIR]   print the environment a client needs (SLURM_CONF=...)
#
# Everything lives in DIR (default /tmp/intervention-meta-slurm): slurm.conf, the munge key and
# socket, the daemons' state, spool, logs and pid files. Slurm's clients inside a job (srun) find
# their configuration at the default path only, so /etc/slurm/slurm.conf is made a link to DIR's
# file when there is none or a link (removed by stop; an existing file is left alone). The node is
# this host (NodeAddr 127.0.0.1) with its CPUs and memory, one partition "debug". No cgroups
# (ProctrackType=proctrack/linuxproc, TaskPlugin=task/none) and no accounting database
# (AccountingStorageType=accounting_storage/none): Snakemake's SLURM executor is told to query
# job states with squeue (slurm_status_command: squeue), and MinJobAge keeps finished jobs visible
# to squeue for 10 minutes. Run as root (slurmd starts job steps as their user).
set -euo pipefail

action=${1:-}
dir=${2:-/tmp/intervention-meta-slurm}
conf="$dir/slurm.conf"

need() {
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || {
            echo "skipped: $cmd is not installed (tests/slurm/install.sh installs slurm-wlm and munge)" >&2
            exit 3
        }
    done
}

stop() {
    if [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$conf" ]]; then
        rm -f /etc/slurm/slurm.conf
    fi
    for name in slurmd slurmctld munged; do
        pidfile="$dir/$name.pid"
        if [[ -s "$pidfile" ]]; then
            pid=$(cat "$pidfile")
            if kill -0 "$pid" 2>/dev/null; then
                kill "$pid" 2>/dev/null || true
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            fi
            rm -f "$pidfile"
        fi
    done
}

start() {
    need munged slurmctld slurmd sbatch squeue scontrol
    export PATH="$PATH:/usr/sbin:/sbin"
    if [[ $(id -u) -ne 0 ]]; then
        echo "skipped: the test cluster must be started as root (slurmd runs the jobs)" >&2
        exit 3
    fi
    stop
    mkdir -p "$dir"/{state,spool,log,munge}
    chmod 700 "$dir/munge"
    host=$(hostname -s)
    cpus=$(nproc)
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)

    # munge: a fresh key and a private socket
    if [[ ! -s "$dir/munge/munge.key" ]]; then
        dd if=/dev/urandom bs=1 count=1024 of="$dir/munge/munge.key" status=none
    fi
    chmod 400 "$dir/munge/munge.key"
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"

    cat >"$conf" <<CONF
ClusterName=intervention-meta-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$conf"
    if [[ ! -e /etc/slurm/slurm.conf || -L /etc/slurm/slurm.conf ]]; then
        mkdir -p /etc/slurm
        ln -sfn "$conf" /etc/slurm/slurm.conf
    fi
    slurmctld -c -f "$conf"
    slurmd -f "$conf"
    # wait until the node takes jobs
    for _ in $(seq 100); do
        state=$(sinfo -h -N -o "%T" 2>/dev/null | head -n1 || true)
        case "$state" in
        idle* | mixed* | allocated*) echo "SLURM test cluster up: node $host ($state), SLURM_CONF=$conf"; return 0 ;;
        esac
        sleep 0.2
    done
    echo "the SLURM test cluster did not come up (node state: ${state:-none}); logs in $dir/log" >&2
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    stop
    exit 1
}

case "$action" in
start) start ;;
stop) stop; echo "SLURM test cluster stopped" ;;
env) echo "SLURM_CONF=$conf" ;;
*)
    echo "usage: $0 start|stop|env [DIR]" >&2
    exit 2
    ;;
esac
