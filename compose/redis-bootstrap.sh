#!/bin/sh
# One-shot: join the Redis nodes given as arguments (host:port ...) into one cluster with
# one replica per master (redis-cli --cluster create, as the local launcher does), unless
# they already form one; exit 0 once every node reports cluster_state:ok and every master
# has a replica. Exit 1 after $TUITALK_BOOTSTRAP_TIMEOUT_S (default 60) seconds.
set -eu
[ $# -ge 2 ] || { echo "usage: redis-bootstrap.sh host:port host:port ..." >&2; exit 2; }
deadline=$(( $(date +%s) + ${TUITALK_BOOTSTRAP_TIMEOUT_S:-60} ))

cli() { _n=$1; shift; redis-cli -h "${_n%:*}" -p "${_n##*:}" "$@" 2>/dev/null; }
wait_until() {  # wait_until <what> <command...>: poll the command until it succeeds
    what=$1; shift
    until "$@"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then echo "timed out: $what" >&2; exit 1; fi
        sleep 0.1
    done
}
answers() { cli "$1" ping | grep -q PONG; }
state_ok() { cli "$1" cluster info | grep -q '^cluster_state:ok'; }
replicas() { cli "$1" cluster nodes | grep -v fail | grep -c slave || true; }
all_replicated() { [ "$(replicas "$1")" -ge $(( $2 / 2 )) ]; }

for node in "$@"; do wait_until "$node answers" answers "$node"; done
known=$(cli "$1" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')
if [ "${known:-1}" -gt 1 ]; then
    echo "the nodes already form a cluster ($known known to $1)"
else
    redis-cli --cluster create "$@" --cluster-replicas 1 --cluster-yes
fi
for node in "$@"; do wait_until "cluster_state:ok on $node" state_ok "$node"; done
wait_until "a replica for every master" all_replicated "$1" $#
echo "redis cluster ready: $*"
