# gRPC's load-balancing plug-in API lives in internal headers that
# libgrpc-dev does not ship. scripts/bootstrap.sh extracts them from Debian's
# source package of the installed version; the ABI of those classes is not
# covered by the soname, so the versions are checked again here.
function(lbkit_check_grpc_internal_headers)
  set(dir "${LBKIT_GRPC_INTERNAL_DIR}")
  if(NOT EXISTS "${dir}/src/core/lib/load_balancing/lb_policy.h")
    message(FATAL_ERROR
      "gRPC's internal headers are missing from ${dir}.\n"
      "Run scripts/bootstrap.sh (as root) to fetch them from Debian's grpc source package.")
  endif()
  file(READ "${dir}/.version" headers_version)
  string(STRIP "${headers_version}" headers_version)
  if(NOT headers_version STREQUAL gRPC_VERSION)
    message(FATAL_ERROR
      "gRPC internal headers in ${dir} are version ${headers_version}, but the installed "
      "gRPC is ${gRPC_VERSION}: their ABI would not match. Run scripts/bootstrap.sh again.")
  endif()
  find_program(DPKG_QUERY dpkg-query)
  if(DPKG_QUERY)
    # Debian 12 calls the library libgrpc29; Debian 13 libgrpc29t64 (the
    # 64-bit time_t transition).
    foreach(package libgrpc29 libgrpc29t64)
      execute_process(COMMAND ${DPKG_QUERY} -W -f=\${Version} ${package}
        OUTPUT_VARIABLE lib_version RESULT_VARIABLE rc ERROR_QUIET)
      if(rc EQUAL 0 AND NOT lib_version STREQUAL "")
        string(REGEX REPLACE "-.*$" "" lib_upstream "${lib_version}")
        if(NOT lib_upstream STREQUAL headers_version)
          message(FATAL_ERROR
            "installed ${package} is ${lib_version}, but the internal headers are "
            "${headers_version}. Run scripts/bootstrap.sh again.")
        endif()
      endif()
    endforeach()
  endif()
  message(STATUS "lbkit: gRPC ${gRPC_VERSION} internal headers in ${dir}")
endfunction()
