#!/usr/bin/env bash
# Start a throw-away single-node SLURM (munged + slurmctld + slurmd) on localhost.
#
#   tests/slurm/start.sh DIR      # DIR: an empty (or missing) scratch directory
#
# Writes DIR/slurm.conf, DIR/gres.conf (one fake GPU on /dev/null), DIR/env.sh (source it to point
# sbatch/squeue/sinfo at this cluster) and DIR/pids/<daemon>.pid for every daemon it started;
# tests/slurm/stop.sh DIR stops exactly those. Needs root (daemons, apt). Installs the Debian
# packages when missing. Facts behind the settings: issue 7 (measured on Debian 12, Slurm 22.05).
set -euo pipefail

DIR=${1:?usage: $0 SCRATCH_DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
mkdir -p "$DIR"/{pids,log,state,spool}

if [[ $(id -u) -ne 0 ]]; then
    echo "start.sh: must run as root (it starts munged, slurmctld and slurmd)" >&2
    exit 2
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
    echo "start.sh: installing slurmctld slurmd slurm-client munge" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >"$DIR/log/apt.log" 2>&1 \
        || { cat "$DIR/log/apt.log" >&2; exit 3; }
fi

HOST=$(hostname -s)
# Not `nproc`: it honours OMP_NUM_THREADS, which the test suite sets to 1.
CPUS=$(getconf _NPROCESSORS_ONLN)
# Leave headroom below the real memory; slurmd drains a node whose RealMemory exceeds the truth.
MEM_MB=$(awk '/MemTotal/ {m = int($2 / 1024 * 0.8); print (m < 4000 ? m : 4000)}' /proc/meminfo)

# gres.conf must sit beside slurm.conf. AutoDetect=off + File=/dev/null gives a fake GPU:
# a job asking --gpus=1 is scheduled on it and gets CUDA_VISIBLE_DEVICES=0.
cat >"$DIR/gres.conf" <<EOF
AutoDetect=off
Name=gpu File=/dev/null
EOF

cat >"$DIR/slurm.conf" <<EOF
ClusterName=wsss-test
SlurmctldHost=${HOST}(127.0.0.1)
# Daemons run as root so the scratch dir needs no ownership changes.
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/pids/slurmctld.pid
SlurmdPidFile=$DIR/pids/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No cgroups in containers / CI VMs.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a per-CPU default every job asks for the whole node's memory and jobs serialise.
DefMemPerCPU=500
# No slurmdbd: status comes from squeue, which forgets a job MinJobAge seconds after it ends.
# Keep it >= 3 x slurm-init-seconds-before-status-checks of the test profile.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
# Trust this file over what slurmd detects (CPUs/memory of a CI VM vary).
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

cat >"$DIR/env.sh" <<EOF
export SLURM_CONF=$DIR/slurm.conf
EOF
export SLURM_CONF=$DIR/slurm.conf

# Inside a job, snakemake-executor-plugin-slurm-jobstep runs the rule with a nested `srun`
# after deleting every SLURM_* variable but the job id, SLURM_CONF included, so srun reads the
# default /etc/slurm/slurm.conf. Point that at this cluster for the test's lifetime; stop.sh
# puts back whatever was there (kept in DIR/etc-slurm.conf.orig).
ETC_CONF=/etc/slurm/slurm.conf
mkdir -p /etc/slurm
if [[ -e $ETC_CONF || -L $ETC_CONF ]]; then
    mv "$ETC_CONF" "$DIR/etc-slurm.conf.orig"
fi
ln -s "$DIR/slurm.conf" "$ETC_CONF"
echo "$ETC_CONF" >"$DIR/etc-link"

# munged: reuse one that already answers (not ours to stop), else start ours.
if munge -n </dev/null >/dev/null 2>&1; then
    echo "start.sh: munged already running; reusing it" >&2
else
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$DIR/pids/munged.pid"
    for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n </dev/null >/dev/null || { echo "start.sh: munged does not answer" >&2; exit 4; }
fi

# -c: start from a clean state (no jobs from an earlier run).
slurmctld -c -f "$DIR/slurm.conf"
slurmd -f "$DIR/slurm.conf"

# Wait until the node is idle (usually ~1 s).
for _ in $(seq 60); do
    state=$(sinfo -h -o %T 2>/dev/null | head -n1 || true)
    [[ $state == idle ]] && { echo "start.sh: SLURM up (node $HOST idle, $CPUS CPUs, ${MEM_MB} MB, 1 fake GPU)" >&2; exit 0; }
    sleep 0.5
done
echo "start.sh: node did not become idle (state: '${state:-none}'); logs in $DIR/log" >&2
tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
exit 5
