#!/usr/bin/env bats
# The command-line contract every telkit command keeps (STYLE.md rules 12-14),
# checked on every command the project builds: each tools/NAME/ folder that
# declares telkit_tool(NAME), so a new command is covered without touching
# this file. Binaries come from ${TELKIT_BIN_DIR:-build/tools}/NAME/NAME.
#
# Each test loops over all commands and reports every command that breaks
# the rule, not only the first.

load helpers  # TELKIT_REPO_DIR and TELKIT_BIN_DIR, resolved once for every test file

setup_file() {
  ROOT=$TELKIT_REPO_DIR
  BIN=$TELKIT_BIN_DIR
  local names=() dir name
  for dir in "$ROOT"/tools/*/; do
    name=$(sed -n 's/^[[:space:]]*telkit_tool(\([^)[:space:]]*\).*/\1/p' "$dir/CMakeLists.txt" 2>/dev/null | head -n 1)
    [[ -n $name ]] && names+=("$name")
  done
  COMMANDS=${names[*]}
  VERSION=$(sed -n 's/^project(telkit VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
  export ROOT BIN COMMANDS VERSION
}

setup() {
  read -r -a commands <<<"$COMMANDS"
  # The commands that are built; test 1 reports the others.
  built=()
  for name in "${commands[@]}"; do
    [[ -x $BIN/$name/$name ]] && built+=("$name")
  done
  problems=()
}

# problem MESSAGE: records a broken rule; check_problems fails the test with
# all of them.
problem() { problems+=("$*"); }
check_problems() {
  ((${#problems[@]} == 0)) || fail "$(printf '%s\n' "${problems[@]}")"
}

# capture NAME ARGS...: runs the command NAME; sets rc, out, err.
capture() {
  local name=$1
  shift
  rc=0
  out=$("$BIN/$name/$name" "$@" 2>"$BATS_TEST_TMPDIR/stderr" </dev/null) || rc=$?
  err=$(cat "$BATS_TEST_TMPDIR/stderr")
}

# long_flags NAME: the long flags that NAME --help lists, one a line.
long_flags() {
  "$BIN/$1/$1" --help | grep -oE '^ {2,6}(-[[:alnum:]],)?--[[:alnum:]][-[:alnum:]]*' |
    grep -oE -- '--[[:alnum:]][-[:alnum:]]*'
}

# roff_flag FLAG: FLAG as a man page writes it (every '-' as '\-').
roff_flag() { printf '%s' "${1//-/\\-}"; }

@test "the project builds at least one command, each from tools/NAME" {
  ((${#commands[@]} > 0)) || fail "no telkit_tool(NAME) found in $ROOT/tools/*/CMakeLists.txt"
  for name in "${commands[@]}"; do
    [[ -x $BIN/$name/$name ]] || problem "$name: $BIN/$name/$name is not built"
  done
  check_problems
}

@test "--help: exit 0, text on stdout, nothing on stderr, within 80 columns" {
  for name in "${built[@]}"; do
    capture "$name" --help
    ((rc == 0)) || problem "$name --help: exit status $rc, want 0"
    [[ -n $out ]] || problem "$name --help: nothing on stdout"
    [[ -z $err ]] || problem "$name --help: wrote to stderr: $err"
    [[ $out == *"Usage: $name"* ]] || problem "$name --help: no 'Usage: $name' line"
    while IFS= read -r line; do
      ((${#line} <= 80)) || problem "$name --help: line of ${#line} columns: $line"
    done <<<"$out"
  done
  check_problems
}

@test "--help lists the shared flags: --help --version --config --log-level --log-format" {
  for name in "${built[@]}"; do
    flags=$(long_flags "$name")
    for flag in --help --version --config --log-level --log-format; do
      grep -qxF -- "$flag" <<<"$flags" || problem "$name --help: no $flag"
    done
  done
  check_problems
}

@test "--version: exit 0, 'NAME VERSION' on stdout, nothing on stderr" {
  [[ -n $VERSION ]] || fail "no project(telkit VERSION ...) in $ROOT/CMakeLists.txt"
  for name in "${built[@]}"; do
    capture "$name" --version
    ((rc == 0)) || problem "$name --version: exit status $rc, want 0"
    [[ $out == "$name $VERSION" ]] || problem "$name --version: printed '$out', want '$name $VERSION'"
    [[ -z $err ]] || problem "$name --version: wrote to stderr: $err"
  done
  check_problems
}

@test "an unknown flag: exit 2, 'NAME: message' on stderr, nothing on stdout" {
  for name in "${built[@]}"; do
    capture "$name" --no-such-flag-anywhere
    ((rc == 2)) || problem "$name --no-such-flag-anywhere: exit status $rc, want 2"
    [[ -z $out ]] || problem "$name --no-such-flag-anywhere: wrote to stdout: $out"
    [[ ${err%%$'\n'*} == "$name: "?* ]] ||
      problem "$name --no-such-flag-anywhere: stderr does not start with '$name: ': $err"
    [[ $err == *--no-such-flag-anywhere* ]] ||
      problem "$name --no-such-flag-anywhere: the message does not name the flag: $err"
  done
  check_problems
}

@test "bad values of the shared flags: exit 2, message on stderr, nothing on stdout" {
  for name in "${built[@]}"; do
    for args in "--log-level loud" "--log-format xml" "--config $BATS_TEST_TMPDIR/missing.conf"; do
      read -r -a argv <<<"$args"
      capture "$name" "${argv[@]}"
      ((rc == 2)) || problem "$name $args: exit status $rc, want 2"
      [[ -z $out ]] || problem "$name $args: wrote to stdout: $out"
      [[ $err == "$name: "?* ]] || problem "$name $args: stderr does not start with '$name: ': $err"
    done
  done
  check_problems
}

@test "man/NAME.1 exists and formats without warnings (groff -ww, man --warnings)" {
  command -v groff >/dev/null || fail "groff is not installed (apt-get install groff-base)"
  command -v man >/dev/null || fail "man is not installed (apt-get install man-db)"
  for name in "${commands[@]}"; do
    page=$ROOT/man/$name.1
    if [[ ! -f $page ]]; then
      problem "$name: no man page man/$name.1"
      continue
    fi
    warnings=$(groff -ww -man -z "$page" 2>&1)
    [[ -z $warnings ]] || problem "$name.1: groff -ww: $warnings"
    warnings=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
    [[ -z $warnings ]] || problem "$name.1: man --warnings: $warnings"
    grep -qE "^\.TH \"?${name^^}\"? 1 " "$page" || problem "$name.1: no '.TH ${name^^} 1' line"
    sections=(NAME SYNOPSIS DESCRIPTION OPTIONS 'EXIT STATUS' EXAMPLES 'SEE ALSO')
    # A daemon's page also says what its signals do.
    [[ -f $ROOT/systemd/$name.service ]] && sections+=(SIGNALS)
    for section in "${sections[@]}"; do
      grep -qxE "\.SH \"?$section\"?" "$page" || problem "$name.1: no .SH $section"
    done
  done
  check_problems
}

# option_items PAGE: the lines that open an item (.TP) of the OPTIONS section.
option_items() {
  awk '
    /^\.SH / { in_options = ($0 == ".SH OPTIONS") }
    in_options && prev == ".TP" { print }
    { prev = $0 }' "$1"
}

@test "man/NAME.1 documents every long flag of --help in an OPTIONS item" {
  for name in "${built[@]}"; do
    page=$ROOT/man/$name.1
    [[ -f $page ]] || continue  # reported by the test above
    items=$(option_items "$page")
    while IFS= read -r flag; do
      escaped=$(roff_flag "$flag")
      # The flag, not a longer one that starts with it (--out vs --out-dir).
      grep -qE -- "$(sed 's/[\\.]/\\&/g' <<<"$escaped")"'($|[^[:alnum:]\\]|\\[^-])' <<<"$items" ||
        problem "$name.1: no .TP item for $flag in OPTIONS (write it as $escaped)"
    done < <(long_flags "$name")
  done
  check_problems
}

@test "man/NAME.1 documents no flag that --help does not list" {
  for name in "${built[@]}"; do
    page=$ROOT/man/$name.1
    [[ -f $page ]] || continue
    flags=$(long_flags "$name")
    # The flags that open an item (.TP) of the OPTIONS section.
    documented=$(option_items "$page" | grep -oE -- '\\-\\-[[:alnum:]][-[:alnum:]\\]*' | sed 's/\\-/-/g; s/\\$//')
    for flag in $documented; do
      grep -qxF -- "$flag" <<<"$flags" || problem "$name.1 documents $flag, which $name --help does not list"
    done
  done
  check_problems
}

@test "bash completion: completions/bash/NAME completes '--' to every long flag" {
  for name in "${built[@]}"; do
    file=$ROOT/completions/bash/$name
    if [[ ! -f $file ]]; then
      problem "$name: no bash completion completions/bash/$name"
      continue
    fi
    bash -n "$file" 2>&1 || problem "$name: completions/bash/$name has syntax errors"
    # A clean shell with the binary on PATH, as a user would have it.
    got=$(env -i HOME="$BATS_TEST_TMPDIR" PATH="$BIN/$name:/usr/bin:/bin" bash --norc --noprofile -c '
      source "$1" || exit 1
      fn=$(complete -p "$2" 2>/dev/null | sed -n "s/.*-F \([^ ]*\).*/\1/p")
      [[ -n $fn ]] || { echo "no complete -F for $2" >&2; exit 1; }
      COMP_WORDS=("$2" --) COMP_CWORD=1 COMP_LINE="$2 --" COMP_POINT=${#COMP_LINE}
      "$fn" "$2" -- "$2"
      printf "%s\n" "${COMPREPLY[@]}"' bash "$file" "$name" 2>&1)
    while IFS= read -r flag; do
      grep -qxF -- "$flag" <<<"$got" || problem "$name: bash completion of '--' lacks $flag (got: ${got//$'\n'/ })"
    done < <(long_flags "$name")
  done
  check_problems
}

@test "bash completion: values of --log-level come from --help" {
  for name in "${built[@]}"; do
    file=$ROOT/completions/bash/$name
    [[ -f $file ]] || continue
    got=$(env -i HOME="$BATS_TEST_TMPDIR" PATH="$BIN/$name:/usr/bin:/bin" bash --norc --noprofile -c '
      source "$1"
      fn=$(complete -p "$2" | sed -n "s/.*-F \([^ ]*\).*/\1/p")
      COMP_WORDS=("$2" --log-level "") COMP_CWORD=2
      "$fn" "$2" "" --log-level
      printf "%s\n" "${COMPREPLY[@]}"' bash "$file" "$name" 2>&1)
    for level in debug info warn error; do
      grep -qxF "$level" <<<"$got" || problem "$name: '--log-level <TAB>' lacks $level (got: ${got//$'\n'/ })"
    done
  done
  check_problems
}

@test "completion files of all commands share one body (only the command name differs)" {
  # The first command that has the file is the reference.
  for first in "${commands[@]}"; do
    [[ -f $ROOT/completions/bash/$first && -f $ROOT/completions/zsh/_$first ]] && break
  done
  for name in "${commands[@]}"; do
    if [[ -f $ROOT/completions/bash/$name && -f $ROOT/completions/bash/$first ]]; then
      diff <(grep -v '^complete ' "$ROOT/completions/bash/$first" | sed "s/$first/NAME/g") \
        <(grep -v '^complete ' "$ROOT/completions/bash/$name" | sed "s/$name/NAME/g") >/dev/null ||
        problem "completions/bash/$name differs from completions/bash/$first beyond the command name"
    fi
    if [[ -f $ROOT/completions/zsh/_$name && -f $ROOT/completions/zsh/_$first ]]; then
      diff <(sed "s/$first/NAME/g" "$ROOT/completions/zsh/_$first") \
        <(sed "s/$name/NAME/g" "$ROOT/completions/zsh/_$name") >/dev/null ||
        problem "completions/zsh/_$name differs from completions/zsh/_$first beyond the command name"
    fi
  done
  check_problems
}

@test "zsh completion: completions/zsh/_NAME exists and is for NAME" {
  for name in "${commands[@]}"; do
    file=$ROOT/completions/zsh/_$name
    if [[ ! -f $file ]]; then
      problem "$name: no zsh completion completions/zsh/_$name"
      continue
    fi
    [[ $(head -n 1 "$file") == "#compdef $name" ]] || problem "$name: completions/zsh/_$name does not start with '#compdef $name'"
    if command -v zsh >/dev/null; then
      zsh -n "$file" 2>&1 || problem "$name: completions/zsh/_$name has syntax errors"
    fi
  done
  check_problems
}

@test "zsh completion: the _arguments specs name every long flag of --help" {
  command -v zsh >/dev/null || skip "zsh is not installed"
  for name in "${built[@]}"; do
    file=$ROOT/completions/zsh/_$name
    [[ -f $file ]] || continue
    # _arguments stubbed to print its specs: what the function would offer.
    got=$(env -i HOME="$BATS_TEST_TMPDIR" PATH="$BIN/$name:/usr/bin:/bin" zsh -f -c '
      _arguments() { print -rl -- "$@" }
      _default() { print -r -- "_default called" }
      words=($2 --) CURRENT=2
      source $1' zsh "$file" "$name" 2>&1)
    while IFS= read -r flag; do
      grep -qE -- "^([*]?[(][^)]*[)])?[*]?${flag}[=[]" <<<"$got" ||
        problem "$name: zsh _arguments specs lack $flag (got: ${got//$'\n'/ })"
    done < <(long_flags "$name")
  done
  check_problems
}
