#!/usr/bin/env bash
# Times `gatehouse code-refs` on a generated tree: 100,000 source files of about 40 lines in
# 1,000 folders, 100 flags in the database, one flag mentioned in every 50th file, and a
# .gitignore'd folder of 10,000 more files that must not be read. Prints the timings that
# BENCHMARKS.md records. Uses target/release/gatehouse when it exists, else the debug build.
#
#   scripts/code-refs-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
binary=target/release/gatehouse
[ -x "$binary" ] || binary=target/debug/gatehouse
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export DATABASE_URL="sqlite://$work/g.db" RUST_LOG=error
"$binary" migrate >/dev/null
python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
flags = [{"key": f"flag-{i:03}", "name": f"Flag {i}", "stage": "In development"} for i in range(100)]
tree = os.path.join(work, "tree")
os.makedirs(os.path.join(tree, ".git"))
with open(os.path.join(tree, ".gitignore"), "w") as f:
    f.write("node_modules/\n")
body = "".join(f"    const value{n} = compute({n}, 'something-else');\n" for n in range(38))
for d in range(1000):
    folder = os.path.join(tree, "src", f"module{d:04}")
    os.makedirs(folder)
    for n in range(100):
        i = d * 100 + n
        mention = f"if (isEnabled('flag-{(i // 50) % 100:03}')) {{ run(); }}\n" if i % 50 == 0 else ""
        with open(os.path.join(folder, f"file{n:03}.ts"), "w") as f:
            f.write(f"// file {i}\nexport function f{i}() {{\n{body}{mention}}}\n")
ignored = os.path.join(tree, "node_modules", "dep")
os.makedirs(ignored)
for n in range(10000):
    with open(os.path.join(ignored, f"x{n}.js"), "w") as f:
        f.write("isEnabled('flag-099')\n")
json.dump(flags, open(os.path.join(work, "flags.json"), "w"))
PY
# The flags go in through the pipeline, added to the exported document as the CLI's import takes them.
"$binary" export > "$work/export.json"
python3 - "$work" <<'PY' > "$work/import.json"
import json, sys
document = json.load(open(sys.argv[1] + "/export.json"))
document["flags"] = json.load(open(sys.argv[1] + "/flags.json"))
print(json.dumps(document))
PY
"$binary" import "$work/import.json" >/dev/null
files=$(find "$work/tree/src" -type f | wc -l)
echo "binary: $binary; files: $files (+10,000 ignored)"
sync
for run in 1 2 3; do
    start=$(date +%s%N)
    "$binary" code-refs "$work/tree" --format json > "$work/out.json"
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    python3 - "$work/out.json" "$ms" "$run" <<'PY'
import json, sys
scan = json.load(open(sys.argv[1]))
refs = sum(len(f["references"]) for f in scan["flags"])
print(f"run {sys.argv[3]}: {sys.argv[2]} ms, {scan['filesScanned']} files scanned, {refs} references, {len(scan['unreferenced'])} flags unreferenced")
PY
done
