#!/usr/bin/env bash
# The module dependency graph, from the source: which module names which (`crate::x` paths and
# `ebbflow_core` in code; comments, doc links and the files' test modules, inline or a tests.rs, left out). Prints Markdown: the rooms (top-level
# modules) with what each imports, the file-level edges, and every pair of rooms that import each
# other. Used to write docs/architecture.md; rerun after moving code:
#
#   scripts/depgraph.sh > /tmp/graph.md
set -euo pipefail
cd "$(dirname "$0")/.."

# module of a file: src/controller/reconcile.rs -> controller/reconcile, src/gcp/mod.rs -> gcp,
# crates/ebbflow-core/src/decide.rs -> core/decide
module_of() {
  local f=$1 m
  case $f in
    crates/ebbflow-core/src/*) m=core/${f#crates/ebbflow-core/src/} ;;
    src/*) m=${f#src/} ;;
  esac
  m=${m%.rs}
  m=${m%/mod}
  [ "$m" = core/lib ] && m=core
  printf '%s\n' "$m"
}

edges() {
  local f from crate_root
  while IFS= read -r f; do
    from=$(module_of "$f")
    case $from in lib | main) continue ;; esac
    case $f in crates/ebbflow-core/*) crate_root=core ;; *) crate_root= ;; esac
    # Code only: drop the test module at the end of the file and comment lines, then take every
    # `crate::a::b` / `ebbflow_core::a` path.
    sed '/^#\[cfg(test)\]/,$d' "$f" | grep -v '^\s*//' |
      grep -oE '(crate|ebbflow_core)::[a-z_]+(::[a-z_]+)?' |
      sed -E 's/^ebbflow_core::/core::/; s/^crate:://' |
      while IFS= read -r path; do
        local top=${path%%::*} sub=
        [[ $path == *::* ]] && sub=${path#*::}
        if [ -n "$crate_root" ]; then
          # inside the core crate, crate:: is the core
          sub=$top
          top=core
        fi
        local to=$top
        # name the file when the room is a folder of files (core, controller, gcp, sim, ...)
        if [ -n "$sub" ] && { [ -f "src/$top/$sub.rs" ] || [ -d "src/$top/$sub" ] || { [ "$top" = core ] && [ -f "crates/ebbflow-core/src/$sub.rs" ]; }; }; then
          to=$top/$sub
        fi
        [ "$to" = "$from" ] || printf '%s %s\n' "$from" "$to"
      done
  done < <(find src crates/ebbflow-core/src -name '*.rs' -not -path '*/tests/*' -not -name tests.rs | sort)
}

room() { printf '%s\n' "${1%%/*}"; }

all=$(edges | sort -u)

echo "### Rooms: what each top-level module imports"
echo
echo '```text'
rooms=$(echo "$all" | while read -r a b; do
  ra=$(room "$a"); rb=$(room "$b"); [ "$ra" = "$rb" ] || echo "$ra $rb"
done | sort -u)
for r in $(echo "$rooms" | cut -d' ' -f1 | sort -u); do
  printf '%-10s -> %s\n' "$r" "$(echo "$rooms" | awk -v r="$r" '$1 == r { print $2 }' | paste -sd' ' -)"
done
echo '```'
echo
echo "### Rooms that import each other"
echo
cycles=$(echo "$rooms" | while read -r a b; do
  if echo "$rooms" | grep -qx "$b $a" && [[ $a < $b ]]; then echo "- $a <-> $b"; fi
done)
echo "${cycles:-none}"
echo
echo "### Loops of rooms, of any length (tsort)"
echo
loops=$(echo "$rooms" | tsort 2>&1 >/dev/null | sed -n 's/^tsort: //p' | grep -v 'input contains a loop' | paste -sd' ' - || true)
echo "${loops:-none}"
echo
echo "### Files: every edge that leaves a file"
echo
echo '```text'
for m in $(echo "$all" | cut -d' ' -f1 | sort -u); do
  printf '%-22s -> %s\n' "$m" "$(echo "$all" | awk -v m="$m" '$1 == m { print $2 }' | paste -sd' ' -)"
done
echo '```'
