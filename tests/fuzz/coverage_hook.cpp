// A no-op __sanitizer_cov_trace_pc: g++'s -fsanitize-coverage=trace-pc (the
// DER_FUZZ option) calls it in every basic block, so every program of a
// DER_FUZZ build links this library; the fuzz targets define the real hook
// in standalone_main.cpp, which the linker takes instead (this one is weak
// and sits in a static library).
extern "C" __attribute__((weak, no_sanitize_coverage)) void __sanitizer_cov_trace_pc() {}
