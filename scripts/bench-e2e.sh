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
	*) echo "unknown scenario $w" >&2; exit 2 ;;
	esac
done
