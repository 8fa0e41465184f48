# CPack: a Debian package of everything `cmake --install` installs.
#   cmake --build build && (cd build && cpack -G DEB)
# gives build/telkit_<version>_<arch>.deb. Its dependencies are the Debian
# packages of the shared libraries the binaries link (dpkg-shlibdeps); the
# maintainer scripts in cmake/debian create the telkit user and directories;
# cmake/debian/conffiles marks /etc/telkit/scrape.yml as the admin's file
# (dpkg keeps their edits across upgrades).
# tests/cli/package.bats builds it and checks its contents.

set(CPACK_PACKAGE_NAME telkit)
set(CPACK_PACKAGE_VENDOR telkit)
set(CPACK_PACKAGE_CONTACT "telkit maintainers <telkit@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "single-node observability stack (OTLP receiver, metrics, logs and trace stores, PromQL)")
set(CPACK_PACKAGE_DESCRIPTION
    "telkit replaces an OpenTelemetry Collector, Prometheus, Loki and Tempo on one host
with a few command-line tools: otlp-recv receives OTLP (gRPC :4317, HTTP :4318),
tel-batch processes and routes, tsdb-write, log-ingest and trace-store store
metrics, logs and traces, and tel-query answers the Prometheus HTTP API.
Start it all with: systemctl enable --now telkit.target")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# systemd-sysusers (postinst) and the units; adduser is the fallback without it.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/telkit/telkit")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_CURRENT_LIST_DIR}/debian/postinst;${CMAKE_CURRENT_LIST_DIR}/debian/prerm;${CMAKE_CURRENT_LIST_DIR}/debian/postrm;${CMAKE_CURRENT_LIST_DIR}/debian/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# `ninja install` and cpack install what is built, without building every
# test first: build the commands (scripts/build.sh) before packaging.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

include(CPack)
