#!/bin/sh
# End-to-end benchmarks behind BENCHMARKS.md: a real tlogd process on a
# fresh data directory, loaded over gRPC on loopback by tlogbench from a
# second process on the same machine. Each scenario runs RUNS times; report
# the median. Usage: scripts/bench-e2e.sh [append|single|paced|half|fill|prove]...
#   append  8 clients x 100 records per Append, closed loop
#   single  64 clients x 1 record per Append, closed loop
#   paced   64 clients x 1 record, paced at 10,000 calls/s in total
#   half    the same paced at 5,000 calls/s
#   fill    RECORDS (10 million) records in Appends of 1000, for prove
#   prove   inclusion proofs of random leaves at the latest size, 32 clients,
#           after WARMUP (120s) of the same load to fill the caches
#   events  8 clients x 100, then x 1000 generated user-management events per
#           RecordEvents, closed loop
#   eventlog  RECORDS (10 million) events in 10 rounds, each followed by 100
#           events of the subject "hot" in tenant-1, for timeline
#   timeline  GetTimeline of that subject (1,000 events with proofs), 1 client
#   tlogctl the auditor's tools on the log as it stands (run fill first, with
#           RECORDS=1000000): monitor -full from scratch, export with
#           payloads, verify-export; wall time of each
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DUR=${DUR:-20s}
ADDR=127.0.0.1:7450
DATA=${DATA:-$(mktemp -d)/data}
go build -o bin/ ./cmd/...

start() {
	mkdir -p "$(dirname "$DATA")"
	bin/tlogd serve -listen "$ADDR" -data-dir "$DATA" -log-level warn >"$DATA.out" 2>"$DATA.log" &
	PID=$!
	for _ in $(seq 300); do
		grep -q "tlogd serving" "$DATA.out" 2>/dev/null && return
		sleep 0.1
	done
	echo "tlogd did not start:" >&2; cat "$DATA.log" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" || true; }

scenario() {
	name=$1; shift
	for i in $(seq "$RUNS"); do
		printf '%s run %d: ' "$name" "$i"
		bin/tlogbench -addr "$ADDR" -server-pid "$PID" -duration "$DUR" "$@" 2>/dev/null | head -2 | tr '\n' ' '
		echo
	done
}

# auditor_tools times tlogctl against the checkpoint of the log as it stands
# (exports add payload-read records, so later runs pin that size).
auditor_tools() {
	work=$(mktemp -d)
	sed -n 's/^verifier key: //p' "$DATA.out" >"$work/log.vkey"
	size=$(bin/tlogctl checkpoint -addr "$ADDR" -vkey-file "$work/log.vkey" -json | sed 's/.*"size":\([0-9]*\).*/\1/')
	for i in $(seq "$RUNS"); do
		rm -f "$work"/state*
		t0=$(date +%s.%N)
		bin/tlogctl monitor -addr "$ADDR" -vkey-file "$work/log.vkey" -state "$work/state" -full >/dev/null 2>&1
		t1=$(date +%s.%N)
		bin/tlogctl export -addr "$ADDR" -vkey-file "$work/log.vkey" -size "$size" -out "$work/export.jsonl" >/dev/null
		t2=$(date +%s.%N)
		bin/tlogctl verify-export -vkey-file "$work/log.vkey" "$work/export.jsonl" >/dev/null
		t3=$(date +%s.%N)
		echo "tlogctl run $i, $size records: monitor -full $(awk "BEGIN{print $t1 - $t0}") s, export $(awk "BEGIN{print $t2 - $t1}") s, verify-export $(awk "BEGIN{print $t3 - $t2}") s"
	done
	rm -rf "$work"
}

# event_log fills the log with generated events and a subject with 1,000
# events spread over it.
event_log() {
	vkey=$(sed -n 's/^verifier key: //p' "$DATA.out")
	per=$(( ${RECORDS:-10000000} / 10 ))
	for r in $(seq 10); do
		bin/tlogbench -addr "$ADDR" -mode events -clients 8 -batch 1000 -records "$per" -duration 0 -warmup 0 >/dev/null 2>&1
		for i in $(seq 100); do
			printf '{"eventId":"hot-%d-%d","occurredAt":"2026-11-26T09:00:00Z","tenant":"tenant-1","actor":{"type":"ACTOR_TYPE_USER","id":"admin"},"action":"ACTION_ROLE_ASSIGNED","target":{"type":"TARGET_TYPE_USER","id":"hot"},"outcome":"OUTCOME_SUCCESS","changes":[{"attribute":"role","oldValue":"a","newValue":"b%d"}]}\n' "$r" "$i" "$i"
		done | bin/tlogctl record -addr "$ADDR" -vkey "$vkey" >/dev/null
		echo "eventlog round $r done"
	done
}

[ $# -gt 0 ] || set -- append single paced half
start
trap stop EXIT
for w in "$@"; do
	case $w in
	append) scenario append -clients 8 -batch 100 ;;
	single) scenario single -clients 64 -batch 1 ;;
	paced)  scenario paced -clients 64 -batch 1 -rate 10000 ;;
	half)   scenario half -clients 64 -batch 1 -rate 5000 ;;
	fill)   bin/tlogbench -addr "$ADDR" -server-pid "$PID" -clients 8 -batch 1000 -records "${RECORDS:-10000000}" -duration 0 ;;
	prove)  scenario prove -mode prove -clients 32 -warmup "${WARMUP:-120s}" ;;
	tlogctl) auditor_tools ;;
	events) scenario events-100 -mode events -clients 8 -batch 100
		scenario events-1000 -mode events -clients 8 -batch 1000 ;;
	eventlog) event_log ;;
	timeline) scenario timeline -mode timeline -tenant tenant-1 -subject hot -clients 1 -duration 10s -warmup 2s ;;
	*) echo "unknown scenario $w" >&2; exit 2 ;;
	esac
done
