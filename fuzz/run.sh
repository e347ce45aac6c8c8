#!/bin/sh
# Run every fuzz target for a while and report what each did.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET…]
#
# Default: 36 s per target (3 minutes for the five). Needs cargo-fuzz
# (`cargo install cargo-fuzz`); on stable Rust it runs with RUSTC_BOOTSTRAP=1
# (libFuzzer and the address sanitizer need unstable flags).
#
# Each target starts from fuzz/seeds/<target>/ (real inputs) and the cases
# kept in tests/fixtures/fuzz/<target>/, and grows fuzz/corpus/<target>/.
# An input that panics, runs longer than 10 s or takes more than 2 GB is a
# failure: libFuzzer writes it to fuzz/artifacts/<target>/; minimise it
# (`cargo fuzz tmin`), copy it to tests/fixtures/fuzz/<target>/ (replayed by
# `cargo test --test it fuzz_replay`) and fix po.
set -eu
per=${1:-36}
[ $# -gt 0 ] && shift
targets=${*:-markdown manifest status stream http}
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O >/dev/null 2>&1 || cargo fuzz build -O
mkdir -p logs
failed=0
printf '%-10s %8s %12s %10s %s\n' target seconds executions exec/s result
for t in $targets; do
    mkdir -p "corpus/$t" "../tests/fixtures/fuzz/$t"
    set +e
    cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" "../tests/fixtures/fuzz/$t" -- \
        -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"logs/$t.log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        failed=1
        found=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "logs/$t.log" | tail -n 1)
        result="FAILED (exit $rc): ${found:-see fuzz/logs/$t.log}"
    fi
    printf '%-10s %8s %12s %10s %s\n' "$t" "$per" "${execs:-?}" "${rate:-?}" "$result"
done
exit $failed
