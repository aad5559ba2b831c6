# Device adapters (docs/adapters.md). Included by libder/CMakeLists.txt;
# paths are relative to libder/. The modbus adapter needs libmodbus.
list(APPEND DER_ADAPTER_SOURCES
  src/adapters/adapter.cpp
  src/adapters/adapter_options.cpp
  src/adapters/sim_adapter.cpp
  src/adapters/exec_adapter.cpp
  src/adapters/modbus_map.cpp
  src/adapters/sunspec.cpp
)
find_package(PkgConfig REQUIRED)
pkg_check_modules(MODBUS IMPORTED_TARGET libmodbus)
if(MODBUS_FOUND)
  list(APPEND DER_ADAPTER_SOURCES src/adapters/modbus_adapter.cpp)
  set_source_files_properties(src/adapters/adapter.cpp PROPERTIES COMPILE_DEFINITIONS DER_HAVE_MODBUS=1)
endif()
