#!/bin/sh
# Run every tests/t-*.sh (or those named) and print the total as
# "N passed, N failed, N skipped".  Exit status 1 if anything failed.
cd "$(dirname "$0")/.." || exit 1
RESULTS=$(mktemp)
export RESULTS
status=0
for t in ${*:-tests/t-*.sh}; do
  echo "=== $t"
  bash "$t" || status=1
done
p=$(grep -c '^pass' "$RESULTS"); f=$(grep -c '^fail' "$RESULTS"); s=$(grep -c '^skip' "$RESULTS")
rm -f "$RESULTS"
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ] && exit $status
exit 1
