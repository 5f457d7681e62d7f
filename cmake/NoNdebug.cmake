# Debian's libgrpc was built without NDEBUG, and NDEBUG changes the layout of
# gRPC's internal classes (RefCount, LoadBalancingPolicy) that lbkit derives
# from: compiled with it, lbkit crashes inside gRPC. CMake's Release and
# RelWithDebInfo flags carry it, so it is removed from every configuration
# here, and -O2 is kept for optimised builds. src/grpc_internal/abi_guard.h
# refuses to compile if it comes back some other way.
foreach(var CMAKE_CXX_FLAGS CMAKE_CXX_FLAGS_RELEASE CMAKE_CXX_FLAGS_RELWITHDEBINFO
            CMAKE_CXX_FLAGS_MINSIZEREL CMAKE_CXX_FLAGS_DEBUG)
  string(REGEX REPLACE "(^| )[-/]D *NDEBUG($| )" " " ${var} "${${var}}")
endforeach()
string(REGEX REPLACE "-O3" "-O2" CMAKE_CXX_FLAGS_RELEASE "${CMAKE_CXX_FLAGS_RELEASE}")
