#!/usr/bin/env bash
# Show the progress lines of a long command as they arrive (never held back by a buffer).
#   COMMAND 2>&1 | bash scripts/progress_filter.sh REGEX [PREFIX] [STRIP]
# Keeps the lines matching the extended REGEX, removes leading blanks and the sed regex STRIP
# (default: nothing), squeezes runs of spaces, cuts each line to 110 characters and puts
# PREFIX in front. Every stage is line-buffered (grep --line-buffered, sed -u), so a line
# appears when the command prints it, not when it exits.
set -uo pipefail
regex="$1"
prefix="${2:-}"
strip="${3:-^\$}"
grep --line-buffered -E "$regex" \
    | sed -u -E "s/^ +//; s/${strip}//; s/  +/ /g; s/^(.{110}).*/\\1/; s/^/${prefix}/"
# grep exits 1 when no line matched: that is not an error of the filtered command
exit 0
