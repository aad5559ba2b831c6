# der_store sources (paths relative to libder/), included from libder/CMakeLists.txt.
list(APPEND DER_STORE_SOURCES
  src/store/migrations.cpp
  src/store/partitions.cpp
  src/store/batches.cpp
  src/store/queries.cpp
  src/store/store.cpp
  src/store/writer.cpp
  src/store/reader.cpp
)
