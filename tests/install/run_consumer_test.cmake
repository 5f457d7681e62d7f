# Installs the lbkit build into a temporary prefix, then configures, builds and
# runs projects outside the tree against it: the tiny consumer, and the
# greeter example built standalone.
foreach(var LBKIT_SOURCE_DIR LBKIT_BINARY_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} is not set")
  endif()
endforeach()
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE RelWithDebInfo)
endif()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
run(${CMAKE_COMMAND} --install "${LBKIT_BINARY_DIR}" --prefix "${prefix}")

run(${CMAKE_COMMAND} -S "${LBKIT_SOURCE_DIR}/tests/install/consumer" -B "${WORK_DIR}/consumer"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/consumer" -j2)
run("${WORK_DIR}/consumer/consumer")

run(${CMAKE_COMMAND} -S "${LBKIT_SOURCE_DIR}/examples/greeter" -B "${WORK_DIR}/greeter"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/greeter" -j2)
foreach(binary greeter_server greeter_client greeter_control)
  if(NOT EXISTS "${WORK_DIR}/greeter/${binary}")
    message(FATAL_ERROR "standalone greeter build made no ${binary}")
  endif()
endforeach()
message(STATUS "installed lbkit works from outside the tree")
