#!/usr/bin/env bash
# Builds the single `parley` executable with the Deno permissions of
# scripts/permissions.json baked in (the same flags the run tasks, the
# installed `parley` launcher and the permission tests use); see
# docs/security.md, "Permissions".
#
# `deno compile` embeds `denort`, Deno's runtime: from DENORT_BIN when set,
# else from Deno's cache, else it downloads it from dl.deno.land. When it
# cannot, this script says what to do and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'HELP'
Usage: deno task compile [OPTIONS]        (or scripts/compile.sh [OPTIONS])

Builds ./parley with these permissions: network; reading and writing any file
the user may (put any file, get anywhere, any --data dir); the environment
variables Parley reads; no programs unless built with --exec.

Options:
  --exec              also allow the programs remote exec runs (/usr/bin/env,
                      bwrap, kill, prlimit): a binary that can `serve --exec`
  -o, --output FILE   output path (default ./parley)
  --print-flags       print the permission flags and exit
  -h, --help          show this help

Environment:
  DENORT_BIN          path to a denort binary matching this Deno version
                      (for machines without internet access)
HELP
}

exec_flag=()
out=parley
print_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --exec) exec_flag=(--exec) ;;
    -o|--output) out="${2:?--output needs a file name}"; shift ;;
    --print-flags) print_only=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compile: unknown option $1 (see deno task compile --help)" >&2; exit 2 ;;
  esac
  shift
done

if ! command -v deno >/dev/null 2>&1; then
  echo "compile: deno is not on PATH; run this as: npx -y deno@2.9.6 task compile" >&2
  exit 1
fi

mapfile -t flags < <(deno run --allow-read=scripts scripts/permission_flags.ts "${exec_flag[@]}")
if [ ${#flags[@]} -eq 0 ]; then
  echo "compile: could not read the permission flags from scripts/permissions.json" >&2
  exit 1
fi

if [ "$print_only" = 1 ]; then
  printf '%s\n' "${flags[@]}"
  exit 0
fi

version=$(deno eval 'console.log(Deno.version.deno)')
target=$(deno eval 'console.log(Deno.build.target)')
if [ -n "${DENORT_BIN:-}" ] && [ ! -x "$DENORT_BIN" ]; then
  echo "compile: DENORT_BIN=$DENORT_BIN is not an executable file; point it at the denort" >&2
  echo "  binary of Deno $version for $target (unzipped denort-$target.zip), or unset it." >&2
  exit 1
fi

echo "compile: deno compile ${flags[*]} -o $out main.ts"
if ! deno compile "${flags[@]}" -o "$out" main.ts; then
  cat >&2 <<EOF
compile: deno compile failed (its message is above); no binary was built.
  It needs denort $version for $target: from DENORT_BIN, from Deno's cache, or
  downloaded from dl.deno.land. Without internet access get denort-$target.zip for
  Deno $version from the Deno release page, unzip it, and run:
    DENORT_BIN=/path/to/denort npx -y deno@2.9.6 task compile
  Meanwhile \`npx -y deno@2.9.6 task install\` gives you a \`parley\` command with the
  same permissions without compiling (see README.md).
EOF
  exit 1
fi
echo "compile: built $out"
