#!/usr/bin/env bash
# Runs clang-tidy with the project's checks (.clang-tidy) over every source file of core/,
# using build/compile_commands.json (configure and build build/ first: the header lists come
# from its dependency files). Fails on any finding.
#
# A file found clean is remembered in build/tidy-cache under a key made of everything its
# result depends on: clang-tidy's version, .clang-tidy, the file's compile command, and the
# contents of the file and of every project header it includes (ninja's record of the build).
# A later run checks again only the files whose key changed, so touching one .cc re-checks
# one file and touching a header re-checks its includers. With CI set, or --all, the cache
# is not read: every file of core/ is checked (and the cache refreshed).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/compile_commands.json ] || { echo "configure build/ first (cmake -B build)"; exit 2; }
all=0
[ "${1:-}" = --all ] && all=1
[ -n "${CI:-}" ] && all=1
tidy=$(command -v clang-tidy-14 || command -v clang-tidy)
cache=build/tidy-cache
mkdir -p "$cache"
root=$PWD

# For each core/ source, its key (empty when it was never built: no record of its headers,
# so it is always checked). clang-tidy reads the commands from build/tidy/, without the
# precompiled header (GCC's, which clang cannot read): each file is checked with only what it
# includes itself.
mkdir -p build/tidy
common=$( { "$tidy" --version; cat .clang-tidy; } | sha256sum | cut -d' ' -f1)
mapfile -t entries < <(python3 - "$root" "$common" <<'EOF'
import hashlib, json, os, shlex, subprocess, sys
root, common = sys.argv[1], sys.argv[2]
build = os.path.join(root, "build")
# ninja's record of what each object was built from: "obj: #deps ..." then indented paths.
deps, obj = {}, None
for line in subprocess.run(["ninja", "-C", build, "-t", "deps"], capture_output=True,
                           text=True).stdout.splitlines():
    if line and not line[0].isspace():
        obj = line.split(":")[0]
        deps[obj] = []
    elif line.strip() and obj:
        deps[obj].append(os.path.realpath(os.path.join(build, line.strip())))
digests = {}
def digest(path):  # project files only: system headers change with packages and tools
    if path not in digests:
        try:
            digests[path] = hashlib.sha256(open(path, "rb").read()).hexdigest()
        except OSError:
            digests[path] = "missing"
    return digests[path]
kept = []
for e in json.load(open(os.path.join(build, "compile_commands.json"))):
    f = os.path.realpath(os.path.join(e["directory"], e["file"]))
    if not f.startswith(root + "/core/"):
        continue
    args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
    clean, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
        elif a == "-include" and i + 1 < len(args) and "cmake_pch" in args[i + 1]:
            skip = True
        elif not (a == "-Winvalid-pch" or (a.startswith("-include") and "cmake_pch" in a)):
            clean.append(a)
    out = e.get("output") or clean[clean.index("-o") + 1]
    kept.append({"directory": e["directory"], "file": f, "arguments": clean, "output": out})
    mine = sorted({d for d in deps.get(out, []) if d.startswith(root + "/")} | {f})
    key = ""
    if out in deps:
        h = hashlib.sha256((common + "\n" + shlex.join(clean)).encode())
        for d in mine:
            h.update(f"\n{d} {digest(d)}".encode())
        key = h.hexdigest()
    print(f"{f}\t{key}")
json.dump(kept, open(os.path.join(build, "tidy", "compile_commands.json"), "w"), indent=1)
EOF
)

stale=()
keys=()
current=()
for entry in "${entries[@]}"; do
  IFS=$'\t' read -r file key <<<"$entry"
  current+=("$key")
  if [ "$all" = 1 ] || [ -z "$key" ] || [ ! -f "$cache/$key" ]; then
    stale+=("$file")
    keys+=("$key")
  fi
done

total=${#entries[@]}
if [ "${#stale[@]}" -eq 0 ]; then
  echo "clang-tidy: core/ clean ($total files, none changed since they were last found clean)"
  exit 0
fi

# One clang-tidy per file, as many at a time as there are cores, each into its own log.
logs=$(mktemp -d)
cores=$(nproc)
for i in "${!stale[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$cores" ]; do wait -n || true; done
  { "$tidy" -p build/tidy --quiet "${stale[$i]}" >"$logs/$i" 2>&1; echo $? >"$logs/$i.rc"; } &
done
wait
findings=""
for i in "${!stale[@]}"; do
  found=$(sed 's/\x1b\[[0-9;]*m//g' "$logs/$i" | grep -E '^/.*: (warning|error): ' || true)
  if [ -n "$found" ]; then
    findings+="$found"$'\n'
  elif [ "$(cat "$logs/$i.rc")" != 0 ]; then
    cat "$logs/$i"
    findings+="${stale[$i]}: clang-tidy failed (exit $(cat "$logs/$i.rc")), output above"$'\n'
  elif [ -n "${keys[$i]}" ]; then
    touch "$cache/${keys[$i]}"
  fi
done
rm -rf "$logs"
# Only the keys of the files as they are now are kept: the cache never outgrows core/.
for f in "$cache"/*; do
  [ -e "$f" ] || continue
  printf '%s\n' "${current[@]}" | grep -qxF "$(basename "$f")" || rm -f "$f"
done
findings=$(sort -u <<<"$findings" | sed '/^$/d')
if [ -n "$findings" ]; then
  echo "$findings"
  echo "clang-tidy: $(wc -l <<<"$findings") finding(s) in core/"
  exit 1
fi
echo "clang-tidy: core/ clean (${#stale[@]} of $total files checked, the rest unchanged since found clean)"
