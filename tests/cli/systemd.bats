#!/usr/bin/env bats
# The systemd units in systemd/: every daemon (a command tools/NAME with a
# systemd/NAME.service) has a unit that systemd-analyze verifies without a
# single warning, with ExecStart pointing at the built binary; telkit.target
# pulls every daemon in. The `systemd-analyze security` exposure score is
# printed for information. Binaries come from ${TELKIT_BIN_DIR:-build/tools}.

load helpers  # TELKIT_REPO_DIR and TELKIT_BIN_DIR, resolved once for every test file

setup_file() {
  ROOT=$TELKIT_REPO_DIR
  BIN=$TELKIT_BIN_DIR
  local names=() unit
  for unit in "$ROOT"/systemd/*.service; do
    [[ -f $unit ]] && names+=("$(basename "$unit" .service)")
  done
  DAEMONS=${names[*]}
  export ROOT BIN DAEMONS
}

setup() {
  read -r -a daemons <<<"$DAEMONS"
  problems=()
}

problem() { problems+=("$*"); }
check_problems() {
  ((${#problems[@]} == 0)) || fail "$(printf '%s\n' "${problems[@]}")"
}

need_systemd_analyze() {
  command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
}

# unit_values FILE KEY: the values of KEY= in FILE, one a line (words split).
unit_values() {
  sed -n "s/^$2=//p" "$1" | tr ' ' '\n' | sed '/^$/d'
}

# stage_unit NAME DIR: DIR gets NAME.service with ExecStart on the built
# binary, the other units of systemd/, and man pages in DIR/man for the
# Documentation=man: check.
stage_unit() {
  local name=$1 dir=$2 f
  mkdir -p "$dir/man/man1"
  cp "$ROOT"/man/*.1 "$dir/man/man1/"
  for f in "$ROOT"/systemd/*; do
    [[ -f $f ]] && cp "$f" "$dir/"
  done
  if [[ -f $dir/$name.service ]]; then
    sed -i "s|^ExecStart=\\(-\\?\\)/usr/bin/$name\\b|ExecStart=\\1$BIN/$name/$name|" "$dir/$name.service"
  fi
}

@test "there is at least one daemon unit, and each runs a command the project builds" {
  ((${#daemons[@]} > 0)) || fail "no systemd/*.service"
  for name in "${daemons[@]}"; do
    [[ -f $ROOT/tools/$name/main.cpp ]] || problem "$name.service: no command tools/$name"
    [[ -x $BIN/$name/$name ]] || problem "$name.service: $BIN/$name/$name is not built"
    grep -qE "^ExecStart=-?/usr/bin/$name( |$)" "$ROOT/systemd/$name.service" ||
      problem "$name.service: ExecStart does not run /usr/bin/$name"
  done
  check_problems
}

@test "telkit.target wants every daemon, and every daemon is PartOf=telkit.target" {
  target=$ROOT/systemd/telkit.target
  [[ -f $target ]] || fail "no systemd/telkit.target"
  for name in "${daemons[@]}"; do
    unit_values "$target" Wants | grep -qxF "$name.service" || problem "telkit.target: no Wants=$name.service"
    unit_values "$ROOT/systemd/$name.service" PartOf | grep -qxF telkit.target ||
      problem "$name.service: no PartOf=telkit.target"
  done
  for wanted in $(unit_values "$target" Wants); do
    [[ -f $ROOT/systemd/$wanted ]] || problem "telkit.target wants $wanted, which systemd/ does not have"
  done
  check_problems
}

@test "the flags in ExecStart are flags of the command" {
  for name in "${daemons[@]}"; do
    [[ -x $BIN/$name/$name ]] || continue
    # A subcommand right after the command (tel-query serve) has its own --help.
    sub=$(sed -n "s|^ExecStart=-\\?/usr/bin/$name \\([a-z][-a-z]*\\).*|\\1|p" "$ROOT/systemd/$name.service")
    flags=$("$BIN/$name/$name" $sub --help | grep -oE '^ {2,6}(-[[:alnum:]],)?--[[:alnum:]][-[:alnum:]]*' |
      grep -oE -- '--[[:alnum:]][-[:alnum:]]*')
    for flag in $(sed -n 's/^ExecStart=//p' "$ROOT/systemd/$name.service" | grep -oE -- '--[[:alnum:]][-[:alnum:]]*'); do
      grep -qxF -- "$flag" <<<"$flags" || problem "$name.service: ExecStart uses $flag, which $name --help does not list"
    done
  done
  check_problems
}

@test "Type=notify units run a command that sends READY=1 and WATCHDOG=1" {
  for name in "${daemons[@]}"; do
    unit=$ROOT/systemd/$name.service
    grep -qx 'Type=notify' "$unit" || continue
    grep -rqF 'READY=1' "$ROOT/tools/$name" "$ROOT/common" || problem "$name.service: Type=notify but $name never sends READY=1"
    if grep -q '^WatchdogSec=' "$unit"; then
      grep -rqF 'WATCHDOG=1' "$ROOT/tools/$name" "$ROOT/common" ||
        problem "$name.service: WatchdogSec= but $name never sends WATCHDOG=1"
    fi
  done
  check_problems
}

@test "daemon units keep the hardening baseline" {
  for name in "${daemons[@]}"; do
    unit=$ROOT/systemd/$name.service
    for setting in DynamicUser=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
      Restart=on-failure; do
      grep -qxF "$setting" "$unit" || problem "$name.service: no $setting"
    done
    for key in MemoryMax WatchdogSec ExecReload; do
      grep -q "^$key=." "$unit" || problem "$name.service: no $key="
    done
  done
  check_problems
}

@test "systemd-analyze verify: every unit loads without a warning" {
  need_systemd_analyze
  for name in "${daemons[@]}"; do
    dir=$BATS_TEST_TMPDIR/$name
    stage_unit "$name" "$dir"
    out=$(cd "$dir" && MANPATH=$dir/man systemd-analyze verify --man=yes "$dir/$name.service" 2>&1) ||
      problem "$name.service: systemd-analyze verify failed: $out"
    [[ -z $out ]] || problem "$name.service: systemd-analyze verify: $out"
  done
  dir=$BATS_TEST_TMPDIR/target
  stage_unit telkit "$dir"
  out=$(cd "$dir" && MANPATH=$dir/man systemd-analyze verify --man=yes "$dir/telkit.target" 2>&1) ||
    problem "telkit.target: systemd-analyze verify failed: $out"
  [[ -z $out ]] || problem "telkit.target: systemd-analyze verify: $out"
  check_problems
}

@test "systemd-analyze security: exposure score (for information)" {
  need_systemd_analyze
  systemd-analyze security --help 2>/dev/null | grep -q -- --offline || skip "systemd-analyze security has no --offline"
  for name in "${daemons[@]}"; do
    dir=$BATS_TEST_TMPDIR/$name
    stage_unit "$name" "$dir"
    out=$(cd "$dir" && systemd-analyze security --offline=true --no-pager "$dir/$name.service" 2>&1) ||
      problem "$name.service: systemd-analyze security failed: $out"
    score=$(grep -o 'Overall exposure level for .*' <<<"$out")
    [[ -n $score ]] || problem "$name.service: systemd-analyze security printed no exposure level: $out"
    echo "# $score" >&3
  done
  check_problems
}
