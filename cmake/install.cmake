# What `cmake --install` puts beside the binaries (telkit_tool() installs
# those to bin/): man pages, shell completions and systemd units. Included
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

# The units say ExecStart=/usr/bin/NAME; for another prefix they are
# rewritten to the installed binaries.
file(GLOB _telkit_units CONFIGURE_DEPENDS
     "${_telkit_root}/systemd/*.service" "${_telkit_root}/systemd/*.socket" "${_telkit_root}/systemd/*.target")
foreach(_unit IN LISTS _telkit_units)
  get_filename_component(_name "${_unit}" NAME)
  if(_name MATCHES "\\.service$" AND NOT CMAKE_INSTALL_FULL_BINDIR STREQUAL "/usr/bin")
    file(READ "${_unit}" _text)
    string(REPLACE "ExecStart=/usr/bin/" "ExecStart=${CMAKE_INSTALL_FULL_BINDIR}/" _text "${_text}")
    file(GENERATE OUTPUT "${CMAKE_BINARY_DIR}/systemd/${_name}" CONTENT "${_text}")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_unit}")
    install(FILES "${CMAKE_BINARY_DIR}/systemd/${_name}" DESTINATION "${TELKIT_SYSTEMD_UNIT_DIR}")
  else()
    install(FILES "${_unit}" DESTINATION "${TELKIT_SYSTEMD_UNIT_DIR}")
  endif()
endforeach()
