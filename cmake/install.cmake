# Install rules and the Debian package (README "Install").
#
# Layout under CMAKE_INSTALL_PREFIX (GNUInstallDirs):
#   sbin/der-hub                      a system daemon, manual section 8
#   bin/der-agent der-dispatch der-tail der-history der-launch
#   share/man/man{1,5,7,8}/           the hand-written pages of man/
#   share/bash-completion/completions/<prog>   (bash-completion loads by name)
#   share/zsh/vendor-completions/_<prog>       (Debian's zsh fpath)
#   share/fish/vendor_completions.d/<prog>.fish
#   lib/systemd/system/               der-hub.service der-agent@.service der-launch.service
#   share/doc/der/                    README.md, docs/*.md, docs/openapi.yaml
#   share/doc/der/examples/           examples/ (assets.yaml, systemd, dispatch, ...)
# The units name /usr/sbin and /usr/bin (the .deb's prefix); installed under
# another prefix they are rewritten to point at that prefix's programs.

set(DER_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
  "Where the systemd units go, relative to the prefix (or absolute)")

set(der_programs der-agent der-dispatch der-tail der-history der-launch)
install(TARGETS der-hub RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS ${der_programs} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

foreach(section 1 5 7 8)
  file(GLOB der_pages "${PROJECT_SOURCE_DIR}/man/*.${section}")
  install(FILES ${der_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()

foreach(prog der-hub ${der_programs})
  install(FILES completions/${prog}.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
    RENAME ${prog})
  install(FILES completions/_${prog} DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
  install(FILES completions/${prog}.fish DESTINATION ${CMAKE_INSTALL_DATADIR}/fish/vendor_completions.d)
endforeach()

# Units: copied with /usr/sbin/ and /usr/bin/ replaced by the install-time
# prefix (CPack installs with its own prefix, hence at install time).
set(der_units der-hub.service der-agent@.service der-launch.service)
foreach(unit ${der_units})
  install(CODE "
    set(dir \"${DER_SYSTEMD_UNITDIR}\")
    if(NOT IS_ABSOLUTE \"\${dir}\")
      set(dir \"\${CMAKE_INSTALL_PREFIX}/\${dir}\")
    endif()
    file(READ \"${PROJECT_SOURCE_DIR}/examples/systemd/${unit}\" text)
    string(REPLACE \"/usr/sbin/\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SBINDIR}/\" text \"\${text}\")
    string(REPLACE \"/usr/bin/der-\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/der-\" text \"\${text}\")
    message(STATUS \"Installing: \$ENV{DESTDIR}\${dir}/${unit}\")
    file(WRITE \"\$ENV{DESTDIR}\${dir}/${unit}\" \"\${text}\")
  ")
endforeach()

install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md" PATTERN "*.yaml")
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples USE_SOURCE_PERMISSIONS)

# --- Debian package: cpack -G DEB in the build directory -----------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "der")
set(CPACK_PACKAGE_VENDOR "der project")
set(CPACK_PACKAGE_CONTACT "der maintainers <der@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "der maintainers <der@example.org>")
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.org/der")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "${PROJECT_DESCRIPTION}
 der-hub, the headend daemon of a fleet of batteries (REST API, ZeroMQ
 control socket and live stream, optional PostgreSQL history), der-agent, one
 per battery (simulated, exec or Modbus/TCP device), and the command-line
 tools der-dispatch, der-tail, der-history and der-launch. Ships man pages,
 bash/zsh/fish completions and systemd units (not enabled).")
# Runtime libraries from the programs' ELF dependencies (dpkg-shlibdeps, in
# dpkg-dev); without it, Debian 12's package names.
find_program(DER_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(DER_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6 (>= 2.36), libstdc++6 (>= 12), libgcc-s1, libzmq5, libyaml-cpp0.7, libpq5, libfmt9, libsystemd0, libmodbus5")
endif()
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql (>= 15), jq, curl")
include(CPack)
