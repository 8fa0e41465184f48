# What `cmake --install` puts beside the binaries (telkit_tool() installs
# those to bin/): man pages, shell completions, systemd units, the sysusers.d
# file, and documentation with the examples in share/doc/telkit. Included
# from the top CMakeLists.txt; paths are relative to CMAKE_INSTALL_PREFIX
# (normally /usr for packages, so units land in /usr/lib/systemd/system).

include(GNUInstallDirs)

get_filename_component(_telkit_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)

set(TELKIT_BASH_COMPLETION_DIR "${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions"
    CACHE PATH "where bash completions are installed")
set(TELKIT_ZSH_COMPLETION_DIR "${CMAKE_INSTALL_DATAROOTDIR}/zsh/vendor-completions"
    CACHE PATH "where zsh completions are installed")
set(TELKIT_SYSTEMD_UNIT_DIR "lib/systemd/system"
    CACHE PATH "where systemd units are installed")

file(GLOB _telkit_man_pages CONFIGURE_DEPENDS "${_telkit_root}/man/*.1")
install(FILES ${_telkit_man_pages} DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")

# bash-completion loads completions/NAME when NAME is first completed.
file(GLOB _telkit_bash_completions CONFIGURE_DEPENDS "${_telkit_root}/completions/bash/*")
install(FILES ${_telkit_bash_completions} DESTINATION "${TELKIT_BASH_COMPLETION_DIR}")

file(GLOB _telkit_zsh_completions CONFIGURE_DEPENDS "${_telkit_root}/completions/zsh/_*")
install(FILES ${_telkit_zsh_completions} DESTINATION "${TELKIT_ZSH_COMPLETION_DIR}")

# The units say ExecStart=/usr/bin/NAME; under another prefix they are
# rewritten to the installed binaries (and /etc/telkit to PREFIX/etc/telkit). The prefix is the one of the install
# (cmake --install --prefix, cpack's /usr), not the configured one, so the
# copy is made at install time.
file(GLOB _telkit_units CONFIGURE_DEPENDS
     "${_telkit_root}/systemd/*.service" "${_telkit_root}/systemd/*.socket" "${_telkit_root}/systemd/*.timer"
     "${_telkit_root}/systemd/*.target")
foreach(_unit IN LISTS _telkit_units)
  get_filename_component(_name "${_unit}" NAME)
  if(_name MATCHES "\\.service$")
    set(_out "${CMAKE_BINARY_DIR}/systemd-install/${_name}")
    install(CODE "
      file(READ \"${_unit}\" _text)
      if(NOT \"\${CMAKE_INSTALL_PREFIX}/bin\" STREQUAL \"/usr/bin\")
        string(REPLACE \"ExecStart=/usr/bin/\" \"ExecStart=\${CMAKE_INSTALL_PREFIX}/bin/\" _text \"\${_text}\")
        string(REPLACE \" /etc/telkit/\" \" \${CMAKE_INSTALL_PREFIX}/etc/telkit/\" _text \"\${_text}\")
      endif()
      file(WRITE \"${_out}\" \"\${_text}\")")
    install(FILES "${_out}" DESTINATION "${TELKIT_SYSTEMD_UNIT_DIR}")
  else()
    install(FILES "${_unit}" DESTINATION "${TELKIT_SYSTEMD_UNIT_DIR}")
  endif()
endforeach()

# The telkit system user every unit runs as (systemd-sysusers creates it; the
# package's postinst runs it).
set(TELKIT_SYSUSERS_DIR "lib/sysusers.d" CACHE PATH "where sysusers.d files are installed")
install(FILES "${_telkit_root}/systemd/telkit.sysusers" DESTINATION "${TELKIT_SYSUSERS_DIR}" RENAME telkit.conf)

# Configuration: /etc/telkit/scrape.yml, otlp-recv's --scrape-config in its
# unit (config/scrape-self.yml: the stack scrapes its own admin endpoints).
# /etc is beside the prefix when that is .../usr (/usr -> /etc, and cpack's
# staging .../usr -> .../etc, so the package holds /etc/telkit/scrape.yml,
# a conffile: cmake/debian/conffiles); under any other prefix PREFIX/etc.
# (file(INSTALL) adds $DESTDIR itself.)
install(CODE "
  get_filename_component(_telkit_prefix \"\${CMAKE_INSTALL_PREFIX}\" ABSOLUTE)
  get_filename_component(_telkit_prefix_name \"\${_telkit_prefix}\" NAME)
  if(_telkit_prefix_name STREQUAL \"usr\")
    get_filename_component(_telkit_etc \"\${_telkit_prefix}/../etc/telkit\" ABSOLUTE)
  else()
    set(_telkit_etc \"\${_telkit_prefix}/etc/telkit\")
  endif()
  file(INSTALL \"${_telkit_root}/config/scrape-self.yml\" DESTINATION \"\${_telkit_etc}\"
       RENAME scrape.yml)")

# Documentation and examples: README, the design notes and format pages,
# the stack's command lines, and examples/ (demo app, pipelines, Grafana).
install(FILES "${_telkit_root}/README.md" "${_telkit_root}/systemd/stack.commands"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}")
install(DIRECTORY "${_telkit_root}/docs/" DESTINATION "${CMAKE_INSTALL_DOCDIR}/docs")
install(DIRECTORY "${_telkit_root}/examples/" DESTINATION "${CMAKE_INSTALL_DOCDIR}/examples"
        PATTERN "node_modules" EXCLUDE)
# The rules that ship (tel-rules: copy them to /etc/telkit/rules to use them).
install(DIRECTORY "${_telkit_root}/rules/" DESTINATION "${CMAKE_INSTALL_DOCDIR}/rules")
