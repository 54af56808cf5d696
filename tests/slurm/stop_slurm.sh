#!/usr/bin/env bash
# Stop the daemons that start_slurm.sh $1 started, by PID, whatever state they are in, and
# remove the /etc/slurm files it wrote.
D=$1
if [ -f "$D/pids" ]; then
  while read -r pid; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
  done < "$D/pids"
  sleep 0.5
  while read -r pid; do
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  done < "$D/pids"
fi
if grep -q "^# curvrobust-test" /etc/slurm/slurm.conf 2>/dev/null; then
  rm -f /etc/slurm/slurm.conf /etc/slurm/gres.conf
fi
exit 0
