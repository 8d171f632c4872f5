#!/usr/bin/env bash
# Stop the daemons tests/slurm/start.sh DIR started, each by its pid file; safe to call twice,
# and after a start that failed half way. Never touches daemons it did not start.
set -uo pipefail

DIR=${1:?usage: $0 SCRATCH_DIR}
[[ -d $DIR/pids ]] || exit 0

if [[ -f $DIR/slurm.conf ]]; then
    # Cancel leftover jobs first so slurmd does not leave orphaned job steps behind.
    SLURM_CONF=$DIR/slurm.conf timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
fi

stop_pid() {  # name, pid file
    local name=$1 file=$2 pid
    [[ -f $file ]] || return 0
    pid=$(tr -dc 0-9 <"$file")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop.sh: $name ($pid) ignored SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$file"
}

# Reverse start order: compute daemon, controller, then authentication.
stop_pid slurmd "$DIR/pids/slurmd.pid"
stop_pid slurmctld "$DIR/pids/slurmctld.pid"
stop_pid munged "$DIR/pids/munged.pid"

# Undo start.sh's /etc/slurm/slurm.conf link (only if it still points into DIR) and restore
# the file it displaced.
if [[ -f $DIR/etc-link ]]; then
    link=$(cat "$DIR/etc-link")
    if [[ -L $link && $(readlink "$link") == "$DIR/slurm.conf" ]]; then
        rm -f "$link"
        if [[ -e $DIR/etc-slurm.conf.orig || -L $DIR/etc-slurm.conf.orig ]]; then
            mv "$DIR/etc-slurm.conf.orig" "$link"
        fi
    fi
    rm -f "$DIR/etc-link"
fi
exit 0
