# Sourced by the experiment scripts that collect lip's JSON lines in one file, after they set `out`:
#   run TAG COMMAND ARGS...  runs `lip COMMAND ARGS...`, tags each JSON line it prints on stdout (or its error
#   line, as {"failed": ...}) and appends them to $out/results.jsonl; stderr goes to $out/log.txt. A tag already
#   in the file is skipped, so a re-run continues where the last one stopped.
# LIP="python -m lipcli" runs a source tree instead of the installed lip.
lip=${LIP:-lip}
mkdir -p "$out"
touch "$out/results.jsonl"

run() {
  local tag=$1 result
  shift
  grep -q "\"tag\": \"$tag\"" "$out/results.jsonl" && return 0
  result=$($lip "$@" 2>>"$out/log.txt") || result=$(tail -n 1 "$out/log.txt" | python -c \
    "import json, sys; print(json.dumps({'failed': sys.stdin.read().strip()}))")
  echo "$result" | python -c "import json, sys
for line in sys.stdin:
    if line.strip():
        d = json.loads(line); d['tag'] = '$tag'; print(json.dumps(d, sort_keys=True))" >>"$out/results.jsonl"
}
