# shellcheck shell=sh
# Shared helpers of the ci/ scripts (POSIX sh). Sourced, never run: the caller sets
# `prog` (its name, for messages) before sourcing.
: "${prog:?set prog before sourcing lib/common.sh}"

# die MESSAGE: print `prog: MESSAGE` and exit 1 (bad input or a failed step).
die() {
  printf '%s: %s\n' "$prog" "$1" >&2
  exit 1
}

# usage_error MESSAGE: like die, but exit 2 and point at --help (a wrong command line).
usage_error() {
  # shellcheck disable=SC2016 # the backquotes are literal
  printf '%s: %s (see `%s --help`)\n' "$prog" "$1" "$prog" >&2
  exit 2
}

# need_file PATH: the file must exist and be a regular, readable, writable file.
need_file() {
  [ -e "$1" ] || die "\`$1\` does not exist; pass the right path with -f"
  [ -f "$1" ] || die "\`$1\` is not a regular file"
  { [ -r "$1" ] && [ -w "$1" ]; } || die "\`$1\` is not readable and writable by $(id -un 2>/dev/null || id -u)"
}

# replace_atomic TARGET NEWFILE: move NEWFILE over TARGET keeping TARGET's mode, so a
# reader never sees a half-written file (NEWFILE must be in TARGET's directory for the
# rename to be atomic; use tmp_beside to make it).
replace_atomic() {
  chmod "$(stat -c %a "$1")" "$2" 2>/dev/null || true
  mv -f "$2" "$1"
}

# tmp_beside TARGET: a new empty temporary file in TARGET's directory; its path is printed.
tmp_beside() {
  case $1 in
    */*) dir=${1%/*} ;;
    *) dir=. ;;
  esac
  mktemp "$dir/.${1##*/}.XXXXXX" || die "cannot create a temporary file beside \`$1\`"
}

# valid_word VALUE WHAT: VALUE must not contain characters that would break the file it
# goes into (quotes, whitespace, `$`, backslashes, newlines); WHAT names it in the error.
valid_word() {
  case $1 in
    '' ) usage_error "$2 is empty" ;;
    *[!A-Za-z0-9._+~@:/-]*) usage_error "$2 \`$1\` has characters outside [A-Za-z0-9._+~@:/-]" ;;
  esac
}
