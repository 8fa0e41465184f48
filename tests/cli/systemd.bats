#!/usr/bin/env bats
# The systemd units in systemd/: every daemon (a command tools/NAME with a
# Type=notify systemd/NAME.service) has a unit that systemd-analyze verifies
# without a single warning, with ExecStart pointing at the built binary;
# every `--in systemd:NAME` has a .socket unit passing NAME; the oneshot
# stack-health.service runs from stack-health.timer; telkit.target pulls
# every unit in. The `systemd-analyze security` exposure score is printed for
# information. Binaries come from ${TELKIT_BIN_DIR:-build/tools}.
# (tests/cli/stack.bats runs the units' command lines as real processes.)

load helpers  # TELKIT_REPO_DIR and TELKIT_BIN_DIR, resolved once for every test file

setup_file() {
  ROOT=$TELKIT_REPO_DIR
  BIN=$TELKIT_BIN_DIR
  local names=() oneshots=() unit
  for unit in "$ROOT"/systemd/*.service; do
    [[ -f $unit ]] || continue
    if grep -qx 'Type=oneshot' "$unit"; then
      oneshots+=("$(basename "$unit" .service)")
    else
      names+=("$(basename "$unit" .service)")
    fi
  done
  DAEMONS=${names[*]}
  ONESHOTS=${oneshots[*]}
  export ROOT BIN DAEMONS ONESHOTS
}

setup() {
  read -r -a daemons <<<"$DAEMONS"
  read -r -a oneshots <<<"$ONESHOTS"
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
# Documentation=man: check. A command not built here (stack-health comes
# from another branch) runs /bin/true and gets a stand-in man page.
stage_unit() {
  local name=$1 dir=$2 f n exe
  mkdir -p "$dir/man/man1"
  cp "$ROOT"/man/*.1 "$dir/man/man1/"
  for f in "$ROOT"/systemd/*; do
    [[ -f $f ]] && cp "$f" "$dir/"
  done
  for f in "$dir"/*.service; do
    n=$(basename "$f" .service)
    exe=$BIN/$n/$n
    [[ -x $exe ]] || exe=/bin/true
    sed -i "s|^ExecStart=\\(-\\?\\)/usr/bin/$n\\b|ExecStart=\\1$exe|" "$f"
    [[ -f $dir/man/man1/$n.1 ]] || printf '.TH %s 1\n.SH NAME\n%s \\- stand-in\n' "$n" "$n" >"$dir/man/man1/$n.1"
  done
}

@test "there is at least one daemon unit, and each runs a command the project builds" {
  ((${#daemons[@]} > 0)) || fail "no systemd/*.service"
  for name in "${daemons[@]}" "${oneshots[@]}"; do
    if [[ $name == stack-health && ! -d $ROOT/tools/$name ]]; then
      echo "# $name.service: tools/$name is not in this tree yet (another branch); not checked" >&3
      continue
    fi
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

@test "every systemd:NAME input has a .socket unit passing NAME, in /run/telkit, that the service requires" {
  for name in "${daemons[@]}"; do
    unit=$ROOT/systemd/$name.service
    for fdname in $(sed -n 's/^ExecStart=//p' "$unit" | grep -oE 'systemd:[-[:alnum:]]+' | sed 's/^systemd://'); do
      socket=$ROOT/systemd/$name.socket
      [[ -f $socket ]] || { problem "$name.service reads systemd:$fdname but there is no $name.socket"; continue; }
      unit_values "$socket" FileDescriptorName | grep -qxF "$fdname" ||
        problem "$name.socket: no FileDescriptorName=$fdname"
      unit_values "$socket" ListenStream | grep -qE '^/run/telkit/[-[:alnum:]]+\.sock$' ||
        problem "$name.socket: ListenStream is not a socket in /run/telkit"
      unit_values "$unit" Requires | grep -qxF "$name.socket" || problem "$name.service: no Requires=$name.socket"
      unit_values "$unit" After | grep -qxF "$name.socket" || problem "$name.service: no After=$name.socket"
      unit_values "$ROOT/systemd/telkit.target" Wants | grep -qxF "$name.socket" ||
        problem "telkit.target: no Wants=$name.socket"
      grep -qx 'SocketUser=telkit' "$socket" || problem "$name.socket: no SocketUser=telkit"
    done
  done
  # Every unix:PATH a unit writes to is a socket some .socket unit listens on.
  for name in "${daemons[@]}"; do
    for path in $(sed -n 's/^ExecStart=//p' "$ROOT/systemd/$name.service" | grep -oE 'unix:/[^ ]+' | sed 's/^unix://'); do
      grep -qx "ListenStream=$path" "$ROOT"/systemd/*.socket || problem "$name.service writes to $path, which no .socket unit listens on"
    done
  done
  check_problems
}

@test "the pipeline starts in order: each stage after the stages it writes to" {
  after() { unit_values "$ROOT/systemd/$1.service" After | grep -qxF "$2" || problem "$1.service: no After=$2"; }
  after otlp-recv tel-batch.service
  after otlp-recv tel-batch.socket
  for store in tsdb-write log-ingest trace-store; do
    after tel-batch "$store.socket"
    after tel-batch "$store.service"
  done
  after trace-store tsdb-write.socket
  after tel-query tsdb-write.service
  check_problems
}

@test "stack-health.timer runs the oneshot stack-health.service every minute" {
  timer=$ROOT/systemd/stack-health.timer
  service=$ROOT/systemd/stack-health.service
  [[ -f $timer && -f $service ]] || fail "no systemd/stack-health.timer or .service"
  grep -qx 'Type=oneshot' "$service" || problem "stack-health.service: not Type=oneshot"
  grep -qxE 'ExecStart=/usr/bin/stack-health( .*)? --canary( .*)?' "$service" || problem "stack-health.service: ExecStart is not stack-health --canary"
  # It reads the stores: the stack's user, the stack's data directory, a state file it may write.
  grep -qx 'User=telkit' "$service" || problem "stack-health.service: not User=telkit"
  ! grep -q '^DynamicUser=yes' "$service" || problem "stack-health.service: DynamicUser cannot read the stores"
  grep -qE '^ExecStart=.* --data /var/lib/telkit( |$)' "$service" || problem "stack-health.service: no --data /var/lib/telkit"
  state=$(grep -oE -- '--state-file [^ ]+' "$service" | cut -d' ' -f2)
  dir=$(sed -n 's/^StateDirectory=//p' "$service")
  [[ -n $state && $state == /var/lib/$dir/* ]] || problem "stack-health.service: --state-file '$state' is not under StateDirectory=$dir"
  # docs/stack-health.md shows these units, not other text.
  for f in "$service" "$timer"; do
    grep -vE '^(#|$)' "$f" | while IFS= read -r line; do
      grep -qxF -- "$line" "$ROOT/docs/stack-health.md" || echo "docs/stack-health.md lacks '$line' of $(basename "$f")"
    done
  done >"$BATS_TEST_TMPDIR/doc"
  [[ ! -s $BATS_TEST_TMPDIR/doc ]] || problem "$(cat "$BATS_TEST_TMPDIR/doc")"
  grep -qx 'OnUnitActiveSec=1min' "$timer" || problem "stack-health.timer: not every minute"
  unit_values "$ROOT/systemd/telkit.target" Wants | grep -qxF stack-health.timer || problem "telkit.target: no Wants=stack-health.timer"
  check_problems
}

@test "the flags in ExecStart are flags of the command" {
  for name in "${daemons[@]}" "${oneshots[@]}"; do
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
    for setting in User=telkit Group=telkit ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
      Restart=on-failure RuntimeDirectory=telkit RuntimeDirectoryPreserve=yes; do
      grep -qxF "$setting" "$unit" || problem "$name.service: no $setting"
    done
    for key in MemoryMax WatchdogSec ExecReload; do
      grep -q "^$key=." "$unit" || problem "$name.service: no $key="
    done
  done
  for name in "${oneshots[@]}"; do
    unit=$ROOT/systemd/$name.service
    for setting in User=telkit ProtectSystem=strict NoNewPrivileges=yes; do
      grep -qxF "$setting" "$unit" || problem "$name.service: no $setting"
    done
    grep -q '^MemoryMax=.' "$unit" || problem "$name.service: no MemoryMax="
  done
  # The user the units run as is the one the package creates.
  grep -qE '^u telkit ' "$ROOT/systemd/telkit.sysusers" || problem "telkit.sysusers does not create the telkit user"
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
  dir=$BATS_TEST_TMPDIR/others
  stage_unit telkit "$dir"
  for unit in "$dir"/*.socket "$dir"/*.timer "$dir"/*.target "$dir"/stack-health.service; do
    name=$(basename "$unit")
    out=$(cd "$dir" && MANPATH=$dir/man systemd-analyze verify --man=yes "$unit" 2>&1) ||
      problem "$name: systemd-analyze verify failed: $out"
    [[ -z $out ]] || problem "$name: systemd-analyze verify: $out"
  done
  check_problems
}

@test "systemd-analyze security: exposure score (for information)" {
  need_systemd_analyze
  systemd-analyze security --help 2>/dev/null | grep -q -- --offline || skip "systemd-analyze security has no --offline"
  for name in "${daemons[@]}" "${oneshots[@]}"; do
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
