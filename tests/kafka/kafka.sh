#!/usr/bin/env bash
#
# A real Apache Kafka broker (KRaft, combined broker+controller nodes) on
# loopback, for the tests and the benchmarks.
#
#   kafka.sh fetch                      resolve the jars (once; cached), print their directory
#   kafka.sh start [--nodes N] [--dir D] [--owner PID]
#                                       format KRaft storage in D, start N nodes (1 or 3) on
#                                       free ports, wait until every node answers, print the
#                                       bootstrap string (host:port,...) on stdout and return;
#                                       the nodes are stopped when process PID exits (default:
#                                       the caller of kafka.sh; 0: never). In a script:
#                                       bs=$(kafka.sh start --owner $$). Three nodes:
#                                       replication 3 and min.insync.replicas 2 by default
#   kafka.sh stop [--dir D]             stop every node (SIGTERM, SIGKILL after 20 s), remove D
#   kafka.sh kill NODE [--dir D]        SIGKILL node NODE (1..N), for fault tests
#   kafka.sh restart NODE [--dir D]     start node NODE again on its ports and data; wait for it
#   kafka.sh bootstrap [--dir D]        print the bootstrap string of a running cluster
#   kafka.sh run [--nodes N] -- CMD...  start, run CMD with XS_KAFKA_BOOTSTRAP set, stop
#
# D defaults to $XS_KAFKA_DIR, else ${TMPDIR:-/tmp}/xsell-kafka.$UID; D/bootstrap holds the
# bootstrap string, D/nodeI/{server.properties,server.log,pid} each node.
#
# Environment:
#   XS_KAFKA_VERSION  Apache Kafka release (default 3.9.2, the supported one; see README)
#   XS_KAFKA_CACHE    jar cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/xsell/kafka); the jars
#                     of a version are resolved by Maven (tests/kafka/pom.xml, through
#                     ~/.m2) once, then copied to $XS_KAFKA_CACHE/<version>-<pom hash>; later runs
#                     neither call Maven nor download anything
#   XS_KAFKA_HEAP     JVM heap per node (default 512m)
#   JAVA              the java binary (default java on PATH; Java 17 or later)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=${XS_KAFKA_VERSION:-3.9.2}
cache=${XS_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xsell/kafka}
heap=${XS_KAFKA_HEAP:-512m}
java=${JAVA:-java}
dir=${XS_KAFKA_DIR:-${TMPDIR:-/tmp}/xsell-kafka.$(id -u)}
nodes=1
owner=$PPID

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }

# True while pid runs (a zombie does not).
alive() {
    [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 1
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ $st != Z ]]
}

# One directory per version and per content of pom.xml (a changed descriptor resolves again).
jars_dir() { echo "$cache/$version-$(sha1sum "$here/pom.xml" | cut -c1-8)"; }

fetch() {
    local jd
    jd=$(jars_dir)
    if [[ -f "$jd/.complete" ]]; then
        echo "$jd"
        return
    fi
    command -v mvn >/dev/null || die "mvn not found (deploy/install-deps.sh installs maven)"
    log "resolving Apache Kafka $version with Maven into $jd"
    rm -rf "$jd.tmp"
    mkdir -p "$jd.tmp"
    local major=()
    [[ $version == 3.* ]] || major=(-Dkafka4)
    mvn -q -B -Dstyle.color=never -f "$here/pom.xml" -Dkafka.version="$version" "${major[@]}" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$jd.tmp" \
        >"$jd.tmp.log" 2>&1 || {
        cat "$jd.tmp.log" >&2
        die "Maven could not resolve org.apache.kafka:kafka_2.13:$version"
    }
    rm -f "$jd.tmp.log"
    ls "$jd.tmp"/kafka_2.13-"$version".jar >/dev/null 2>&1 || die "no kafka_2.13-$version.jar"
    touch "$jd.tmp/.complete"
    rm -rf "$jd"
    mv "$jd.tmp" "$jd"
    echo "$jd"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

node_java() { # node -> starts the node's JVM in the background, writes its pid
    local i=$1 jd
    jd=$(jars_dir)
    # Its own session (setsid): a terminal's Ctrl-C or a test's process group
    # signal does not reach it; stop/kill address it by pid.
    setsid "$java" -Xms128m -Xmx"$heap" -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$dir/log4j.properties" \
        -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$dir/node$i" \
        -cp "$jd/*" kafka.Kafka "$dir/node$i/server.properties" \
        </dev/null >>"$dir/node$i/stdout.log" 2>&1 &
    echo $! >"$dir/node$i/pid"
}

wait_started() { # node -> waits until the node logs it has started and its port answers
    local i=$1 port pid
    port=$(cat "$dir/node$i/port")
    pid=$(cat "$dir/node$i/pid")
    for _ in $(seq 1200); do
        alive "$pid" || {
            tail -20 "$dir/node$i/server.log" "$dir/node$i/stdout.log" >&2 2>/dev/null
            die "node $i exited during start-up (logs: $dir/node$i)"
        }
        if grep -q "Kafka Server started" "$dir/node$i/server.log" 2>/dev/null &&
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "node $i did not start within 120 s (logs: $dir/node$i)"
}

write_config() {
    local n=$1 i voters="" rf
    rf=$(( n < 3 ? n : 3 ))
    for i in $(seq "$n"); do
        mkdir -p "$dir/node$i"
        free_port >"$dir/node$i/port"
        free_port >"$dir/node$i/cport"
        voters+="${voters:+,}$i@127.0.0.1:$(cat "$dir/node$i/cport")"
    done
    cat >"$dir/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.controller=INFO
log4j.logger.state.change.logger=WARN
EOF
    # The same for Kafka 4.x, which logs through log4j2.
    cat >"$dir/log4j2.properties" <<'EOF'
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
EOF
    for i in $(seq "$n"); do
        cat >"$dir/node$i/server.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(cat "$dir/node$i/port"),CONTROLLER://127.0.0.1:$(cat "$dir/node$i/cport")
advertised.listeners=PLAINTEXT://127.0.0.1:$(cat "$dir/node$i/port")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/node$i/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$(( rf > 1 ? 2 : 1 ))
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$(( rf > 1 ? 2 : 1 ))
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.segment.bytes=67108864
log.retention.hours=-1
log.retention.bytes=-1
num.network.threads=2
num.io.threads=4
# Fail over within seconds when a node dies (defaults 9 s and 30 s): the
# controller fences a node after 4 s without heartbeat, a leader drops a
# follower from the ISR after 5 s without fetch (acks=all waits until then).
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
replica.lag.time.max.ms=5000
EOF
    done
}

format_storage() {
    local n=$1 i cid jd pids=()
    jd=$(jars_dir)
    # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding. One
    # that starts with '-' reads as an option to the tool's argument parser
    # (1 in 64): draw again, as Kafka's own Uuid.randomUuid() does.
    cid=-
    while [[ $cid == -* ]]; do
        cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    echo "$cid" >"$dir/cluster.id"
    for i in $(seq "$n"); do
        "$java" -Xmx256m -Dlog4j.configuration="file:$dir/log4j.properties" \
            -Dlog4j2.configurationFile="$dir/log4j2.properties" \
            -Dkafka.logs.dir="$dir/node$i" -cp "$jd/*" kafka.tools.StorageTool format \
            -t "$cid" -c "$dir/node$i/server.properties" >"$dir/node$i/format.log" 2>&1 &
        pids+=($!)
    done
    for i in $(seq "$n"); do
        wait "${pids[$((i - 1))]}" || { cat "$dir/node$i/format.log" >&2; die "format node $i"; }
    done
}

bootstrap() {
    local i bs=""
    for i in $(seq "$(cat "$dir/nodes")"); do
        bs+="${bs:+,}127.0.0.1:$(cat "$dir/node$i/port")"
    done
    echo "$bs"
}

stop_all() {
    [[ -f "$dir/nodes" ]] || return 0
    local i pid pids=()
    for i in $(seq "$(cat "$dir/nodes")"); do
        pid=$(cat "$dir/node$i/pid" 2>/dev/null) || continue
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
    for _ in $(seq 200); do
        local alive=0
        for pid in "${pids[@]}"; do alive "$pid" && alive=1; done
        [[ $alive == 0 ]] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    if [[ -f "$dir/watchdog.pid" ]]; then
        pid=$(cat "$dir/watchdog.pid")
        [[ $pid != "$$" ]] && kill "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}

start() {
    [[ $nodes == 1 || $nodes == 3 ]] || die "--nodes: 1 or 3"
    if [[ -f "$dir/nodes" ]]; then
        local pid
        pid=$(cat "$dir/node1/pid" 2>/dev/null || true)
        alive "$pid" && die "a cluster already runs in $dir"
        rm -rf "$dir"
    fi
    fetch >/dev/null
    mkdir -p "$dir"
    echo "$nodes" >"$dir/nodes"
    echo "$version" >"$dir/version"
    write_config "$nodes"
    format_storage "$nodes"
    local i
    for i in $(seq "$nodes"); do node_java "$i"; done
    if [[ $owner != 0 ]]; then
        # Stops the cluster when the owner exits (nohup, own session, no
        # inherited stdout, so a caller's $(...) does not wait for it).
        setsid nohup bash "$here/kafka.sh" __watch "$owner" --dir "$dir" \
            </dev/null >/dev/null 2>&1 &
        echo $! >"$dir/watchdog.pid"
    fi
    for i in $(seq "$nodes"); do wait_started "$i"; done
    bootstrap >"$dir/bootstrap"
    cat "$dir/bootstrap"
}

cmd=${1:-}
[[ -n $cmd ]] || die "usage: kafka.sh fetch|start|stop|kill|restart|bootstrap|run (see the top of the script)"
shift
node=""
if [[ $cmd == kill || $cmd == restart ]]; then
    node=${1:-}
    [[ $node =~ ^[0-9]+$ ]] || die "$cmd: node number expected"
    shift
fi
watch_pid=""
[[ $cmd == __watch ]] && { watch_pid=$1; shift; }
run_cmd=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --owner) owner=$2; shift 2 ;;
    --) shift; run_cmd=("$@"); break ;;
    *) die "unknown argument '$1'" ;;
    esac
done

case $cmd in
fetch) fetch ;;
start) start ;;
stop) stop_all ;;
bootstrap) [[ -f "$dir/bootstrap" ]] || die "no cluster in $dir"; cat "$dir/bootstrap" ;;
kill)
    kill -KILL "$(cat "$dir/node$node/pid")" 2>/dev/null || die "node $node is not running"
    ;;
restart)
    pid=$(cat "$dir/node$node/pid")
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && die "node $node is still running"
    mv "$dir/node$node/server.log" "$dir/node$node/server.log.$(date +%s%N)" 2>/dev/null || true
    node_java "$node"
    wait_started "$node"
    ;;
run)
    [[ ${#run_cmd[@]} -gt 0 ]] || die "run: -- CMD expected"
    owner=0
    trap stop_all EXIT
    XS_KAFKA_BOOTSTRAP=$(start)
    export XS_KAFKA_BOOTSTRAP
    "${run_cmd[@]}"
    ;;
__watch)
    while alive "$watch_pid" && [[ -d $dir ]]; do sleep 1; done
    [[ -d $dir ]] && stop_all
    ;;
*) die "unknown command '$cmd'" ;;
esac
