#!/usr/bin/env bash
# Fails if a binary imports a libc credential setter: glibc applies those to every
# thread of the process, which would undo each thread's impersonation.
set -euo pipefail
status=0
for bin in "$@"; do
    bad=$(nm -D --undefined-only "$bin" | awk '{print $NF}' \
        | grep -E '^(set(e|re|res)?[ug]id|setgroups|initgroups|setfs[ug]id)(@.*)?$' || true)
    if [ -n "$bad" ]; then
        printf '%s imports libc credential setters:\n%s\n' "$bin" "$bad" >&2
        status=1
    else
        printf '%s: imports no libc credential setter\n' "$bin"
    fi
done
exit $status
