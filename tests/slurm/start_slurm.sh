#!/usr/bin/env bash
# Bring up a single-node SLURM (Debian's 22.05) on localhost in folder $1, as root, without
# systemd or cgroups. Writes $1/slurm.conf and $1/pids (one PID a line) and returns once the
# node is idle. Stop everything with stop_slurm.sh $1.
set -euo pipefail
D=$(realpath "$1")
mkdir -p "$D/state" "$D/spool" "$D/munge"
: > "$D/pids"
HOST=$(hostname -s)
MEM=$(( $(free -m | awk 'NR==2{print $2}') / 2 ))

# munge: its own socket in $D, the package's key
install -d -o munge -g munge -m 0755 "$D/munge"
munged --force --socket="$D/munge/munge.socket" --pid-file="$D/munge/munged.pid" \
  --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed"
for _ in $(seq 50); do [ -s "$D/munge/munged.pid" ] && break; sleep 0.1; done
cat "$D/munge/munged.pid" >> "$D/pids"

# Job steps (srun inside a job) read the default /etc/slurm/slurm.conf: the Snakemake job-step
# plugin drops SLURM_* variables, SLURM_CONF among them. Refuse to replace a real cluster's file.
if [ -f /etc/slurm/slurm.conf ] && ! grep -q "^# curvrobust-test" /etc/slurm/slurm.conf; then
  echo "/etc/slurm/slurm.conf exists and is not ours; not touching a real SLURM set-up" >&2
  exit 3
fi
cat > "$D/slurm.conf" <<CONF
# curvrobust-test: written by tests/slurm/start_slurm.sh, removed by stop_slurm.sh
ClusterName=curvrobust-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldPort=${SLURMCTLD_PORT:-16817}
SlurmdPort=${SLURMD_PORT:-16818}
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=600
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=$HOST Name=gpu File=/dev/null" > "$D/gres.conf"
mkdir -p /etc/slurm
cp "$D/slurm.conf" /etc/slurm/slurm.conf
cp "$D/gres.conf" /etc/slurm/gres.conf

export SLURM_CONF="$D/slurm.conf"
slurmctld -f "$D/slurm.conf"
for _ in $(seq 100); do [ -s "$D/slurmctld.pid" ] && break; sleep 0.1; done
cat "$D/slurmctld.pid" >> "$D/pids"
slurmd -f "$D/slurm.conf"
for _ in $(seq 100); do [ -s "$D/slurmd.pid" ] && break; sleep 0.1; done
cat "$D/slurmd.pid" >> "$D/pids"
for _ in $(seq 150); do
  if sinfo -h -o %T 2>/dev/null | grep -qx idle; then exit 0; fi
  sleep 0.2
done
echo "SLURM node did not become idle; logs in $D" >&2
sinfo >&2 || true
exit 1
