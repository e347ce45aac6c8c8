#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (munged, slurmctld, slurmd),
# as root, for po-spawn's Slurm launcher tests and bench/slurm-overhead.sh.
#
#   sudo bash .ci/slurm-up.sh          # install (Debian), configure, start, wait
#   sudo bash .ci/slurm-up.sh --down   # stop the daemons this script started
#
# It installs Debian's slurm-wlm and munge when they are missing, writes
# /etc/slurm/slurm.conf unless one exists that this script did not write, and
# starts each daemon that is not running yet; running it twice is harmless.
# The node takes this machine's short hostname and its CPUs; a partition `po`
# oversubscribes each core 8 times, so more jobs than cores run at once.
# Accounting is off: squeue and scontrol answer, sacct does not.
set -euo pipefail

MARK="# written by po's .ci/slurm-up.sh"
CONF=/etc/slurm/slurm.conf
KEY=/etc/munge/munge.key
SPOOL=/var/spool/slurm
LOGS=/var/log/slurm

say() { echo "slurm-up: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  say "run me as root (the daemons run as root and munge)"
  exit 1
fi

if [ "${1:-}" = "--down" ]; then
  for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      kill "$(cat "$pidfile")" && say "stopped $(basename "$pidfile" .pid)"
    fi
  done
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
  || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  say "installing slurm-wlm and munge"
  if [ -z "${PO_APT_UPDATED:-}" ]; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

host=$(hostname -s)
cpus=$(nproc)
# slurmd drains a node that has less memory than configured.
mem=$(awk '/^MemTotal:/ { m = int($2 / 1024); print (m < 4000 ? m : 4000) }' /proc/meminfo)

# munge: a key owned by munge, mode 400; munged runs as munge.
install -d -o munge -g munge -m 0700 /etc/munge
if [ ! -s "$KEY" ]; then
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile="$KEY" --force
  else
    dd if=/dev/urandom of="$KEY" bs=1 count=1024 status=none
  fi
fi
chown munge:munge "$KEY"
chmod 0400 "$KEY"
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  rm -f /run/munge/munge.socket.2 /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged
  say "started munged"
fi

# slurm.conf: ours, or left alone.
install -d -m 0755 /etc/slurm "$SPOOL" "$SPOOL/ctld" "$SPOOL/d" "$LOGS"
if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  say "keeping $CONF (not written by this script)"
else
  cat >"$CONF.new" <<EOF
$MARK
ClusterName=po
# Loopback addresses: the node's name need not resolve.
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Schedule batch jobs as they come rather than in batches every few seconds.
SchedulerParameters=batch_sched_delay=0
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=10
InactiveLimit=0
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=po Nodes=$host Default=YES MaxTime=INFINITE OverSubscribe=FORCE:8 State=UP
EOF
  if ! cmp -s "$CONF.new" "$CONF" 2>/dev/null; then
    mv "$CONF.new" "$CONF"
    say "wrote $CONF (node $host, $cpus CPUs)"
    changed=1
  else
    rm -f "$CONF.new"
  fi
fi

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# A new slurm.conf: restart what runs (jobs and the controller's state survive).
if [ -n "${changed:-}" ]; then
  for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
    if running "$pidfile"; then
      kill "$(cat "$pidfile")"
      for _ in $(seq 1 50); do running "$pidfile" || break; sleep 0.2; done
      say "stopped $(basename "$pidfile" .pid) to reread $CONF"
    fi
  done
fi
if ! running /run/slurmctld.pid; then
  /usr/sbin/slurmctld
  say "started slurmctld"
fi
if ! running /run/slurmd.pid; then
  /usr/sbin/slurmd
  say "started slurmd"
fi

# Wait until the node takes jobs.
for _ in $(seq 1 60); do
  state=$(sinfo -h -N -o %T 2>/dev/null | head -n1 || true)
  case "$state" in
    idle* | mixed* | allocated*)
      say "node $host is $state"
      exit 0
      ;;
    down* | drain*)
      scontrol update NodeName="$host" State=RESUME 2>/dev/null || true
      ;;
  esac
  sleep 1
done
say "the node did not come up; see $LOGS/slurmctld.log and $LOGS/slurmd.log"
sinfo -N -l >&2 || true
exit 1
