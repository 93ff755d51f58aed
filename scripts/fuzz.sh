#!/usr/bin/env bash
# Runs every Go fuzz target of the main module for a given time each.
#   scripts/fuzz.sh 3s     (make fuzz-smoke)
#   scripts/fuzz.sh 2m     (make test-long)
# Targets are found by their "func FuzzXxx(f *testing.F)" declarations, so
# a new target is picked up without editing this script.
set -euo pipefail
fuzztime=${1:-3s}
cd "$(dirname "$0")/.."

fail=0
count=0
while IFS= read -r file; do
	pkg="./$(dirname "$file")"
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "$file"); do
		count=$((count + 1))
		echo "fuzz $pkg $target ($fuzztime)"
		if ! go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" >"${TMPDIR:-/tmp}/welkin-fuzz.log" 2>&1; then
			cat "${TMPDIR:-/tmp}/welkin-fuzz.log"
			echo "FAIL fuzz $pkg $target"
			fail=1
		fi
	done
done < <(git ls-files --cached --others --exclude-standard '*_test.go' | grep -v '^bench/' | sort)

if [ "$count" -eq 0 ]; then
	echo "no fuzz targets found" >&2
	exit 1
fi
echo "fuzz: $count targets, each for $fuzztime"
exit $fail
