#!/usr/bin/env bash
# Builds the single `parley` executable with least-privilege Deno permissions
# baked in. The flags come from scripts/permissions.json (the same list the
# permission tests run with); see docs/security.md, "Permissions".
#
# `deno compile` needs `denort`, the runtime it embeds. It is used from
# DENORT_BIN when set, or from Deno's cache when an earlier build put it there;
# otherwise this script says so and skips the build (exit 0), because it
# would try to download denort, which machines without internet access can't.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'HELP'
Usage: scripts/compile.sh [OPTIONS]        (also: deno task compile [OPTIONS])

Builds ./parley with these permissions: network; read/write only in
./parley-data (relative to where parley runs) and the client config dir;
the environment variables Parley reads; running programs only with --exec.

Options:
  --exec              also grant --allow-run (needed for remote exec)
  --allow-path DIR    also allow reading and writing DIR (repeatable), e.g. a
                      transfers dir for `parley put/get`, or where the TLS
                      certificate lives
  --config-dir DIR    client config dir to allow (default: $XDG_CONFIG_HOME/parley
                      or ~/.config/parley of the user building)
  -o, --output FILE   output path (default ./parley)
  --print-flags       print the permission flags and exit
  -h, --help          show this help

Environment:
  DENORT_BIN          path to a denort binary matching this Deno version
HELP
}

exec_flag=()
config_flag=()
extra=()
out=parley
print_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --exec) exec_flag=(--exec) ;;
    --allow-path) extra+=("$(realpath -m "${2:?--allow-path needs a directory}")"); shift ;;
    --config-dir) config_flag=(--config "${2:?--config-dir needs a directory}"); shift ;;
    -o|--output) out="${2:?--output needs a file name}"; shift ;;
    --print-flags) print_only=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compile.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

mapfile -t flags < <(deno run --allow-read=scripts --allow-env scripts/permission_flags.ts \
  "${exec_flag[@]}" "${config_flag[@]}")
if [ ${#extra[@]} -gt 0 ]; then
  joined=$(IFS=,; echo "${extra[*]}")
  for i in "${!flags[@]}"; do
    case "${flags[$i]}" in
      --allow-read=*|--allow-write=*) flags[$i]="${flags[$i]},$joined" ;;
    esac
  done
fi

if [ "$print_only" = 1 ]; then
  printf '%s\n' "${flags[@]}"
  exit 0
fi

version=$(deno eval 'console.log(Deno.version.deno)')
target=$(deno eval 'console.log(Deno.build.target)')
deno_dir=${DENO_DIR:-$(deno eval 'console.log(Deno.env.get("XDG_CACHE_HOME") ?? (Deno.env.get("HOME") + "/.cache"))')/deno}
cached="$deno_dir/dl/release/v$version/denort-$target.zip"
if [ -n "${DENORT_BIN:-}" ]; then
  if [ ! -x "$DENORT_BIN" ]; then
    echo "compile: DENORT_BIN=$DENORT_BIN is not an executable file" >&2
    exit 1
  fi
  echo "compile: using denort from DENORT_BIN=$DENORT_BIN"
elif [ -f "$cached" ]; then
  echo "compile: using the cached denort $cached"
else
  echo "compile: skipped: deno compile needs denort $version for $target, which is neither"
  echo "  in DENORT_BIN nor cached at $cached, and this script does not download it."
  echo "  Get denort-$target.zip for Deno $version from the Deno release page, unzip it,"
  echo "  and run: DENORT_BIN=/path/to/denort deno task compile"
  echo "  Meanwhile run Parley with the same permissions through deno run:"
  echo "    deno run ${flags[*]} main.ts serve"
  exit 0
fi

echo "compile: deno compile ${flags[*]} -o $out main.ts"
deno compile "${flags[@]}" -o "$out" main.ts
echo "compile: built $out"
