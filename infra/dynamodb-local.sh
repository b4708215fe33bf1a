#!/usr/bin/env bash
# Fetch, start and stop DynamoDB Local (Amazon's own emulator, a Java jar)
# without Docker.
#
# Usage: infra/dynamodb-local.sh [--port N] [--in-memory] COMMAND
#
#   fetch    download the jar once into .cache/dynamodb-local/ (npm pack of
#            amplify-dynamodb-simulator, checked against a pinned SHA-256)
#   start    start it in the background and wait until it answers; prints
#            "started" on stdout. Fails if the port is already taken.
#   ensure   like start, but when DynamoDB already answers on the port it
#            leaves it alone and prints "running" instead of "started".
#   stop     stop the instance this script started on the port (pid file);
#            never touches an instance it did not start.
#   status   exit 0 and print "running" when DynamoDB answers on the port.
#
# Options and environment:
#   --port N     / DYNAMODB_PORT=N        port (default 8000)
#   --in-memory  / DYNAMODB_IN_MEMORY=1   keep nothing on disk (tests use this
#                                         on their own port, so they never see
#                                         the demo data)
#   DYNAMODB_DATA_DIR       database directory (default .data/dynamodb/), kept
#                           across restarts
#   DYNAMODB_START_TIMEOUT  seconds to wait for it to answer (default 60)
#   DYNAMODB_JAVA_OPTS      extra JVM options
#
# DynamoDB Local has no option to choose the listen address (see its -help):
# it listens on all interfaces, on the given port. Clients use 127.0.0.1.
#
# Only progress messages go to stderr; stdout carries just the one-word result,
# so programs can tell whether they started the instance and must stop it.
set -euo pipefail

readonly PKG=amplify-dynamodb-simulator
readonly VERSION=2.9.30
readonly SHA256=3503ffac19f183407909fecdacf4db51ab1fdad1da7b2f177016670b2d80e4b9

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$ROOT/.cache/dynamodb-local
EMULATOR=$CACHE/emulator
TARBALL=$CACHE/$PKG-$VERSION.tgz
RUN=$CACHE/run

PORT=${DYNAMODB_PORT:-8000}
IN_MEMORY=${DYNAMODB_IN_MEMORY:-}
DATA_DIR=${DYNAMODB_DATA_DIR:-$ROOT/.data/dynamodb}
START_TIMEOUT=${DYNAMODB_START_TIMEOUT:-60}

log() { printf 'dynamodb-local: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d' ' -f1
	else
		shasum -a 256 "$1" | cut -d' ' -f1
	fi
}

# fetch: download and unpack the jar once; a no-op when it is already there.
fetch() {
	[[ -f $EMULATOR/DynamoDBLocal.jar ]] && return 0
	command -v java >/dev/null 2>&1 || log "warning: java is not on PATH; DynamoDB Local needs Java 17+"
	mkdir -p "$CACHE"
	if [[ ! -f $TARBALL || $(sha256 "$TARBALL") != "$SHA256" ]]; then
		command -v npm >/dev/null 2>&1 || die "npm is needed once to download $PKG@$VERSION"
		log "downloading $PKG@$VERSION (about 55 MB)"
		rm -f "$TARBALL"
		(cd "$CACHE" && npm pack --silent "$PKG@$VERSION" >/dev/null) || die "npm pack $PKG@$VERSION failed"
	fi
	local got
	got=$(sha256 "$TARBALL")
	if [[ $got != "$SHA256" ]]; then
		rm -f "$TARBALL"
		die "checksum mismatch for $PKG-$VERSION.tgz: got $got, want $SHA256"
	fi
	local tmp
	tmp=$(mktemp -d "$CACHE/extract.XXXXXX")
	tar -xzf "$TARBALL" -C "$tmp" package/emulator
	rm -rf "$EMULATOR"
	mv "$tmp/package/emulator" "$EMULATOR"
	rm -rf "$tmp"
	log "unpacked into ${EMULATOR#"$ROOT"/}"
}

# answers: DynamoDB (Local or not) answers HTTP on 127.0.0.1:$PORT. An
# unsigned request gets a MissingAuthenticationToken error that names dynamodb.
answers() {
	if command -v curl >/dev/null 2>&1; then
		curl -s -m 2 "http://127.0.0.1:$PORT/" 2>/dev/null | grep -qi dynamodb
	else
		port_open
	fi
}

# port_open: anything accepts TCP connections on 127.0.0.1:$PORT.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

pidfile() { echo "$RUN/port-$PORT.pid"; }
logfile() { echo "$RUN/port-$PORT.log"; }

# ours PID: PID is alive and is the DynamoDB Local this script started on $PORT
# (guards against a recycled pid).
ours() {
	local args
	kill -0 "$1" 2>/dev/null || return 1
	args=$(ps -p "$1" -o args= 2>/dev/null) || return 1
	[[ $args == *DynamoDBLocal.jar* && $args == *"-port $PORT"* ]]
}

start() {
	fetch
	if answers; then
		die "DynamoDB already answers on port $PORT (use 'ensure', or 'stop' it first)"
	fi
	if port_open; then
		die "port $PORT is in use by something that is not DynamoDB"
	fi
	command -v java >/dev/null 2>&1 || die "java is not on PATH; install Java 17+ (e.g. apt-get install openjdk-17-jre-headless)"

	local args=(-port "$PORT" -sharedDb -disableTelemetry)
	if [[ -n $IN_MEMORY && $IN_MEMORY != 0 ]]; then
		args+=(-inMemory)
	else
		mkdir -p "$DATA_DIR"
		args+=(-dbPath "$DATA_DIR")
	fi
	mkdir -p "$RUN"
	local pf lf
	pf=$(pidfile)
	lf=$(logfile)
	rm -f "$pf"

	# A new session (when setsid exists) keeps a Ctrl-C in the calling
	# terminal from reaching Java: whoever started it stops it with 'stop'.
	# The inner shell writes its own pid and then becomes java.
	local launcher=()
	command -v setsid >/dev/null 2>&1 && launcher=(setsid)
	# shellcheck disable=SC2086 # DYNAMODB_JAVA_OPTS is a list of options
	(cd "$EMULATOR" && exec "${launcher[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$pf" \
		java -Djava.library.path=./DynamoDBLocal_lib ${DYNAMODB_JAVA_OPTS:-} \
		-jar DynamoDBLocal.jar "${args[@]}" </dev/null >"$lf" 2>&1 &)

	local deadline=$((SECONDS + START_TIMEOUT)) pid=
	while ((SECONDS < deadline)); do
		[[ -z $pid && -s $pf ]] && pid=$(<"$pf")
		if [[ -n $pid ]]; then
			if ! kill -0 "$pid" 2>/dev/null; then
				tail -n 20 "$lf" >&2 || true
				rm -f "$pf"
				die "DynamoDB Local exited during start-up (log: $lf)"
			fi
			# Java keeps running after a failed bind, so read the log too.
			if grep -q 'Exception in thread "main"' "$lf" 2>/dev/null; then
				tail -n 20 "$lf" >&2 || true
				kill "$pid" 2>/dev/null || true
				rm -f "$pf"
				die "DynamoDB Local failed to start (log: $lf)"
			fi
			if answers; then
				log "listening on port $PORT (pid $pid, log ${lf#"$ROOT"/}$([[ -n $IN_MEMORY && $IN_MEMORY != 0 ]] && echo ', in memory' || echo ", data ${DATA_DIR#"$ROOT"/}"))"
				echo started
				return 0
			fi
		fi
		sleep 0.2
	done
	[[ -n $pid ]] && kill "$pid" 2>/dev/null || true
	rm -f "$pf"
	die "DynamoDB Local did not answer on port $PORT within ${START_TIMEOUT}s (log: $lf)"
}

ensure() {
	if answers; then
		log "already running on port $PORT"
		echo running
		return 0
	fi
	start
}

stop() {
	local pf pid
	pf=$(pidfile)
	if [[ ! -s $pf ]]; then
		log "no instance started by this script on port $PORT"
		return 0
	fi
	pid=$(<"$pf")
	if ours "$pid"; then
		kill "$pid" 2>/dev/null || true
		local i
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "pid $pid did not exit after SIGTERM; sending SIGKILL"
			kill -9 "$pid" 2>/dev/null || true
		fi
		log "stopped (pid $pid, port $PORT)"
	else
		log "pid $pid from $pf is no longer DynamoDB Local; removing the stale pid file"
	fi
	rm -f "$pf"
}

status() {
	if answers; then
		echo running
	else
		echo stopped
		return 1
	fi
}

cmd=
while (($#)); do
	case $1 in
	--port) [[ $# -ge 2 ]] || usage; PORT=$2; shift 2 ;;
	--port=*) PORT=${1#--port=}; shift ;;
	--in-memory) IN_MEMORY=1; shift ;;
	-h | --help | help) usage ;;
	fetch | start | ensure | stop | status) [[ -z $cmd ]] || usage; cmd=$1; shift ;;
	*) log "unknown argument: $1"; usage ;;
	esac
done
[[ -n $cmd ]] || usage
[[ $PORT =~ ^[0-9]+$ ]] || die "invalid port: $PORT"

"$cmd"
