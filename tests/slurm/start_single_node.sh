#!/usr/bin/env bash
# Start a one-machine SLURM cluster (munge, slurmctld, slurmd) for the sweep tests.
#
#   tests/slurm/start_single_node.sh [--install]
#
# --install: install the Debian packages slurm-wlm and munge first (needs root and apt).
# Everything the cluster writes lives under $WSLIB_SLURM_DIR (default /tmp/wslib-slurm); the
# partition is called "debug" and has this machine's CPUs. Prints "slurm ready" and exits 0 once
# `sinfo` reports the node idle; exits 1 with the daemons' last log lines when it cannot start.
set -euo pipefail
DIR=${WSLIB_SLURM_DIR:-/tmp/wslib-slurm}

if [[ "${1:-}" == "--install" ]] && ! command -v slurmctld >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null; }
fi
for cmd in munged slurmctld slurmd sinfo; do
    command -v "$cmd" >/dev/null || { echo "slurm not installed: $cmd missing"; exit 1; }
done

if sinfo -h -o %T 2>/dev/null | grep -q idle; then echo "slurm ready"; exit 0; fi

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p "$DIR"/{state,spool,log} /etc/slurm /etc/munge /run/munge /var/lib/munge /var/log/munge
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true

# munge: one key for the one machine
if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
fi
pgrep -x munged >/dev/null || runuser -u munge -- munged --force 2>/dev/null || munged --force

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=wslib
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -q idle; then echo "slurm ready"; exit 0; fi
    sleep 1
done
echo "slurm did not start; last log lines:"
tail -n 5 "$DIR"/log/*.log 2>/dev/null || true
exit 1
