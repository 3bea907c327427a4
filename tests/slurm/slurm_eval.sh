#!/usr/bin/env bash
# eval on a real one-node Slurm cluster: munged, slurmctld and slurmd started
# here from a generated key and slurm.conf in a temporary folder, `eval
# --shard` submitted as one `sbatch --array` job over ../shared/data/voc14,
# the parts merged and compared byte for byte with the unsharded run; the
# daemons are stopped on every exit path. Needs Debian's slurm-wlm and munge
# (.ci/deps) and root (slurmd runs jobs as their user); skipped (77) when
# they are absent, except under CI=true.
set -euo pipefail

skip() {
    if [ "${CI:-}" = "true" ]; then echo "FAIL: $*" >&2; exit 1; fi
    echo "SKIP: $*"; exit 77
}
tool=${CS_TOOL:?CS_TOOL is the clip-surgery binary}
shared=${CLIP_SURGERY_SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
[ -d "$shared/data/voc14" ] || skip "$shared/data/voc14 not found; set CLIP_SURGERY_SHARED"
for b in munged mungekey slurmctld slurmd sbatch sinfo scontrol; do
    command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || skip "$b not installed (bash .ci/deps installs slurm-wlm and munge)"
done
[ "$(id -u)" -eq 0 ] || skip "slurmd needs root to run jobs (run as root, as CI does)"
export PATH="$PATH:/usr/sbin"

tmp=$(mktemp -d /tmp/cs_slurm_XXXXXX)
chmod 755 "$tmp"
pids=()
stop() {
    # Only the daemons this test started, by their own process ids.
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap stop EXIT
fail() {
    echo "FAIL: $*" >&2
    for log in "$tmp"/*.log; do [ -f "$log" ] && { echo "== $log" >&2; tail -n 20 "$log" >&2; }; done
    exit 1
}

# A port nothing listens on (the test must not meet another cluster):
# random in 20000..39999, not among the local ports of /proc/net/tcp{,6}.
free_port() {
    local p hex
    while :; do
        p=$((20000 + RANDOM % 20000))
        hex=$(printf '%04X' "$p")
        grep -qs ":$hex " /proc/net/tcp /proc/net/tcp6 || { echo "$p"; return; }
    done
}

# munge: a fresh key, our own socket.
mungekey --create --keyfile="$tmp/munge.key" --bits=1024 >/dev/null 2>&1 || fail "mungekey could not create a key"
chmod 600 "$tmp/munge.key"
munged --foreground --force --key-file="$tmp/munge.key" --socket="$tmp/munge.socket" \
    --pid-file="$tmp/munged.pid" --log-file="$tmp/munged.log" --seed-file="$tmp/munge.seed" \
    >"$tmp/munged.out.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$tmp/munge.socket" ] && break; sleep 0.1; done
[ -S "$tmp/munge.socket" ] || fail "munged did not start"

# slurm.conf: one node (this machine), one partition, no accounting.
node=$(hostname -s)
mkdir -p "$tmp/state" "$tmp/spool" "$tmp/out"
cat > "$tmp/slurm.conf" <<CONF
ClusterName=cstest
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge.socket
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
LaunchParameters=use_interactive_step
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=cs Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$tmp/slurm.conf"
slurmctld -D -i -f "$SLURM_CONF" >"$tmp/slurmctld.out.log" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N "$node" >"$tmp/slurmd.out.log" 2>&1 &
pids+=($!)
up=0
for _ in $(seq 100); do
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)
    case "$state" in idle*|mixed*|allocated*) up=1; break ;; esac
    sleep 0.2
done
[ "$up" = 1 ] || fail "the node did not come up (sinfo: ${state:-nothing})"

# The same eval unsharded, then as a 3-task array job, merged.
model="$shared/golden/tiny-vit/model.safetensors"
common=(--model "$model" --class-embeddings "$shared/golden/tiny-vit/text_ensemble.npy"
        --images "$shared/data/voc14/images" --masks "$shared/data/voc14/masks"
        --image-suffix _image --mask-suffix _mask --limit 6 --threads 1 --quiet)
"$tool" eval "${common[@]}" --report "$tmp/out/all.json" >/dev/null || fail "unsharded eval failed"

cat > "$tmp/job.sh" <<JOB
#!/usr/bin/env bash
exec "$tool" eval $(printf '%q ' "${common[@]}") --shard \$SLURM_ARRAY_TASK_ID/3 \
    --report "$tmp/out/part\$SLURM_ARRAY_TASK_ID.json"
JOB
chmod +x "$tmp/job.sh"
sbatch --wait --array=0-2 --cpus-per-task=1 --output="$tmp/out/slurm-%A_%a.log" "$tmp/job.sh" >"$tmp/sbatch.log" 2>&1 \
    || fail "sbatch --wait: $(cat "$tmp/sbatch.log")"
for k in 0 1 2; do [ -s "$tmp/out/part$k.json" ] || fail "array task $k wrote no part"; done
"$tool" eval --merge "$tmp/out/part2.json" "$tmp/out/part0.json" "$tmp/out/part1.json" \
    --report "$tmp/out/merged.json" >/dev/null || fail "eval --merge failed"
cmp "$tmp/out/all.json" "$tmp/out/merged.json" || fail "the merged Slurm parts differ from the unsharded report"
echo "slurm: 3 array tasks on $node merged equal to the unsharded report, byte for byte"
