#!/usr/bin/env bats
# `cmake --install` and the CPack .deb: binaries in bin, units in
# lib/systemd/system, man pages, bash and zsh completions, sysusers.d, docs
# and examples where a Debian system expects them; the package's control
# data (dependencies from dpkg-shlibdeps, maintainer scripts). Uses the
# configured build tree ${TELKIT_BUILD_DIR:-build} with the commands built.

load helpers

setup_file() {
  export ROOT=$TELKIT_REPO_DIR BUILD=$TELKIT_BUILD_DIR
  local names=() d
  for d in "$ROOT"/tools/*/; do names+=("$(basename "$d")"); done
  export TOOLS=${names[*]}
}

setup() {
  read -r -a tools <<<"$TOOLS"
  T=$BATS_TEST_TMPDIR
  [[ -f $BUILD/CMakeCache.txt ]] || skip "no configured build tree in $BUILD"
  for name in "${tools[@]}"; do
    [[ -x $BUILD/tools/$name/$name ]] || skip "$name is not built (scripts/build.sh first)"
  done
}

# expected_files PREFIX: what an install under PREFIX holds, one a line.
expected_files() {
  local p=$1 name f
  for name in "${tools[@]}"; do echo "$p/bin/$name"; done
  for f in "$ROOT"/systemd/*.service "$ROOT"/systemd/*.socket "$ROOT"/systemd/*.timer "$ROOT"/systemd/*.target; do
    echo "$p/lib/systemd/system/$(basename "$f")"
  done
  for f in "$ROOT"/man/*.1; do echo "$p/share/man/man1/$(basename "$f")"; done
  for f in "$ROOT"/completions/bash/*; do echo "$p/share/bash-completion/completions/$(basename "$f")"; done
  for f in "$ROOT"/completions/zsh/_*; do echo "$p/share/zsh/vendor-completions/$(basename "$f")"; done
  echo "$p/lib/sysusers.d/telkit.conf"
  if [[ $p == /usr ]]; then echo /etc/telkit/scrape.yml; else echo "$p/etc/telkit/scrape.yml"; fi
  echo "$p/share/doc/telkit/README.md"
  echo "$p/share/doc/telkit/stack.commands"
  echo "$p/share/doc/telkit/docs/ARCHITECTURE.md"
  echo "$p/share/doc/telkit/examples/grafana/provisioning/datasources/telkit.yaml"
}

@test "every command has a man page and bash and zsh completions to install" {
  for name in "${tools[@]}"; do
    [[ -f $ROOT/man/$name.1 ]] || echo "no man/$name.1"
    [[ -f $ROOT/completions/bash/$name ]] || echo "no completions/bash/$name"
    [[ -f $ROOT/completions/zsh/_$name ]] || echo "no completions/zsh/_$name"
  done >"$T/missing"
  [[ ! -s $T/missing ]] || fail "$(cat "$T/missing")"
}

@test "cmake --install puts every file where Debian expects it, units pointing at the installed binaries" {
  run cmake --install "$BUILD" --prefix "$T/root"
  assert_success
  missing=$(expected_files "$T/root" | while read -r f; do [[ -f $f ]] || echo "$f"; done)
  [[ -z $missing ]] || fail "not installed: $missing"
  for name in "${tools[@]}"; do [[ -x $T/root/bin/$name ]] || fail "$T/root/bin/$name is not executable"; done
  # Under another prefix than /usr the units run the binaries installed there.
  run grep -h '^ExecStart=' "$T/root"/lib/systemd/system/*.service
  refute_output --partial '/usr/bin/'
  assert_output --partial "ExecStart=$T/root/bin/otlp-recv "
  assert_output --partial "--scrape-config $T/root/etc/telkit/scrape.yml"
  cmp "$ROOT/config/scrape-self.yml" "$T/root/etc/telkit/scrape.yml"
}

@test "cpack builds a .deb with the same files under /usr, unchanged units and the maintainer scripts" {
  command -v cpack >/dev/null || skip "cpack is not installed"
  command -v dpkg-deb >/dev/null || skip "dpkg-deb is not installed"
  run cpack -G DEB -B "$T/pkg" --config "$BUILD/CPackConfig.cmake"
  assert_success
  debs=("$T"/pkg/telkit_*.deb)
  [[ -f ${debs[0]} ]] || fail "no .deb in $T/pkg: $output"
  deb=${debs[0]}
  version=$(sed -n 's/^project(telkit VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
  [[ $(basename "$deb") == "telkit_${version}_$(dpkg --print-architecture).deb" ]] || fail "unexpected name $(basename "$deb")"

  # dpkg-deb -c: exactly the expected files (directories aside).
  dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort >"$T/contents"
  expected_files /usr | sort >"$T/expected"
  grep -v '^/usr/share/doc/telkit/' "$T/contents" >"$T/contents.nodoc"
  grep -v '^/usr/share/doc/telkit/' "$T/expected" >"$T/expected.nodoc"
  diff -u "$T/expected.nodoc" "$T/contents.nodoc"
  # ... docs and examples included (their listing grows with examples/).
  for f in $(grep '^/usr/share/doc/telkit/' "$T/expected"); do grep -qxF "$f" "$T/contents" || fail "no $f"; done
  dpkg-deb -c "$deb" | grep -E ' \./usr/bin/otlp-recv$' | grep -q '^-rwxr-xr-x' || fail "otlp-recv is not 0755"

  # The units are the repository's, ExecStart=/usr/bin/... as they are.
  dpkg-deb -x "$deb" "$T/x"
  for f in "$ROOT"/systemd/*.service "$ROOT"/systemd/*.socket "$ROOT"/systemd/*.target; do
    cmp "$f" "$T/x/usr/lib/systemd/system/$(basename "$f")" || fail "$(basename "$f") differs in the package"
  done
  # otlp-recv's scrape config, the repository's, is a conffile.
  cmp "$ROOT/config/scrape-self.yml" "$T/x/etc/telkit/scrape.yml" || fail "/etc/telkit/scrape.yml differs"
  grep -q 'scrape-config /etc/telkit/scrape.yml' "$T/x/usr/lib/systemd/system/otlp-recv.service"
  # Binaries are stripped (no .debug_info).
  ! readelf -S "$T/x/usr/bin/otlp-recv" | grep -q '\.debug_info' || fail "otlp-recv is not stripped"

  # dpkg-deb -I: name, version, and dependencies found by dpkg-shlibdeps.
  run dpkg-deb -f "$deb" Package Version Architecture
  assert_line "Package: telkit"
  assert_line "Version: $version"
  depends=$(dpkg-deb -f "$deb" Depends)
  names=$(tr ',' '\n' <<<"$depends" | awk '{ print $1 }')
  for dep in systemd libc6 libstdc++6 libsqlite3-0 libprotobuf32 'libgrpc++1.51' libsystemd0 libzstd1 libsnappy1v5 libre2-9; do
    grep -qxF "$dep" <<<"$names" || fail "Depends has no $dep: $depends"
  done
  run dpkg-deb -I "$deb"
  assert_output --regexp 'postinst'
  assert_output --regexp 'prerm'
  assert_output --regexp 'postrm'
  dpkg-deb -e "$deb" "$T/control"
  [[ $(cat "$T/control/conffiles") == /etc/telkit/scrape.yml ]] || fail "conffiles: $(cat "$T/control/conffiles")"
  for s in postinst prerm postrm; do
    [[ -x $T/control/$s ]] || fail "$s is not executable"
    sh -n "$T/control/$s" || fail "$s: syntax error"
  done
  # postinst creates the user the units run as, and its state directory.
  grep -q 'systemd-sysusers telkit.conf' "$T/control/postinst"
  grep -q 'adduser --system --group' "$T/control/postinst"
  grep -q 'install -d .* -o telkit -g telkit /var/lib/telkit' "$T/control/postinst"
  grep -qx 'u telkit - "telkit observability stack" /var/lib/telkit' "$T/x/usr/lib/sysusers.d/telkit.conf"
}

@test "the postinst creates the telkit user with systemd-sysusers into a scratch root" {
  command -v systemd-sysusers >/dev/null || skip "systemd-sysusers is not installed"
  mkdir -p "$T/r/etc" "$T/r/usr/lib/sysusers.d"
  cp "$ROOT/systemd/telkit.sysusers" "$T/r/usr/lib/sysusers.d/telkit.conf"
  : >"$T/r/etc/passwd"; : >"$T/r/etc/group"; : >"$T/r/etc/shadow"; : >"$T/r/etc/gshadow"
  run systemd-sysusers --root="$T/r" telkit.conf
  assert_success
  grep -qE '^telkit:x:[0-9]+:[0-9]+:telkit observability stack:/var/lib/telkit:' "$T/r/etc/passwd" ||
    fail "no telkit user: $(cat "$T/r/etc/passwd")"
  grep -qE '^telkit:x:[0-9]+:' "$T/r/etc/group"
}

@test "the maintainer scripts: a fresh install creates the user and /var/lib/telkit, an upgrade says nothing, remove and purge keep the data" {
  # Stand-ins for the commands the scripts run, logging their arguments.
  mkdir -p "$T/stubs"
  for c in systemd-sysusers adduser install systemctl getent; do
    printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n' "$c" "$T" >"$T/stubs/$c"
    chmod +x "$T/stubs/$c"
  done
  d=$ROOT/cmake/debian
  run env PATH="$T/stubs:$PATH" sh "$d/postinst" configure
  assert_success
  assert_output --partial 'systemctl enable --now telkit.target'
  grep -qx 'systemd-sysusers telkit.conf' "$T/calls"
  grep -qx 'install -d -m 0755 -o telkit -g telkit /var/lib/telkit' "$T/calls"
  if grep -q '^adduser' "$T/calls"; then fail "adduser ran: $(cat "$T/calls")"; fi
  : >"$T/calls"
  run env PATH="$T/stubs:$PATH" sh "$d/postinst" configure 0.0.9  # an upgrade
  assert_success
  refute_output --partial 'systemctl enable'
  # Without systemd-sysusers: adduser, unless getent knows the user (the
  # scripts use only shell builtins and the stand-ins, so PATH is just those).
  rm "$T/stubs/systemd-sysusers"
  printf '#!/bin/sh\nexit 2\n' >"$T/stubs/getent"
  : >"$T/calls"
  run env PATH="$T/stubs" /bin/sh "$d/postinst" configure
  assert_success
  grep -q '^adduser --system --group --no-create-home --home /var/lib/telkit' "$T/calls"
  printf '#!/bin/sh\necho "telkit:x:999:999::/var/lib/telkit:/usr/sbin/nologin"\n' >"$T/stubs/getent"
  : >"$T/calls"
  run env PATH="$T/stubs" /bin/sh "$d/postinst" configure
  assert_success
  if grep -q '^adduser' "$T/calls"; then fail "adduser ran: $(cat "$T/calls")"; fi
  for s in prerm postrm; do
    run env PATH="$T/stubs:$PATH" sh "$d/$s" remove
    assert_success
    run env PATH="$T/stubs:$PATH" sh "$d/$s" purge
    assert_success
  done
  if grep -v '^install' "$T/calls" | grep -q 'rm \|/var/lib/telkit'; then fail "data touched: $(cat "$T/calls")"; fi
}
