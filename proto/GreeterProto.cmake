# C++ code generation for lbkit's example protos, shared by proto/ (inside the
# lbkit build) and by examples/greeter built on its own against an installed
# lbkit. Needs the imported targets protobuf::protoc (find_package(Protobuf))
# and gRPC::grpc_cpp_plugin, gRPC::grpc++ (find_package(gRPC CONFIG)).

# lbkit_add_grpc_proto_library(<target> <file.proto>...)
#
# Generates the message and gRPC service code of each proto into
# <current binary dir>/generated and compiles it into the static library
# <target>, whose users get that directory as an include path. The protos are
# imported relative to their own directory, so they should share one.
function(lbkit_add_grpc_proto_library target)
  if(NOT ARGN)
    message(FATAL_ERROR "lbkit_add_grpc_proto_library(${target}): no .proto file given")
  endif()
  foreach(tool protobuf::protoc gRPC::grpc_cpp_plugin)
    if(NOT TARGET ${tool})
      message(FATAL_ERROR
        "lbkit_add_grpc_proto_library: ${tool} is not defined; "
        "run find_package(Protobuf) and find_package(gRPC CONFIG) first")
    endif()
  endforeach()

  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/generated")
  file(MAKE_DIRECTORY "${out_dir}")
  set(sources)
  foreach(proto IN LISTS ARGN)
    get_filename_component(proto_abs "${proto}" ABSOLUTE)
    get_filename_component(proto_dir "${proto_abs}" DIRECTORY)
    get_filename_component(name "${proto_abs}" NAME_WE)
    set(outputs
      "${out_dir}/${name}.pb.cc" "${out_dir}/${name}.pb.h"
      "${out_dir}/${name}.grpc.pb.cc" "${out_dir}/${name}.grpc.pb.h")
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND protobuf::protoc
        --proto_path=${proto_dir}
        --cpp_out=${out_dir}
        --grpc_out=${out_dir}
        --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
        ${proto_abs}
      # Naming the files rather than the imported targets makes a new protoc
      # or plugin regenerate the code.
      DEPENDS "${proto_abs}" $<TARGET_FILE:protobuf::protoc> $<TARGET_FILE:gRPC::grpc_cpp_plugin>
      COMMENT "Generating C++ code for ${name}.proto"
      VERBATIM)
    list(APPEND sources ${outputs})
  endforeach()

  add_library(${target} STATIC ${sources})
  target_include_directories(${target} PUBLIC "${out_dir}")
  target_link_libraries(${target} PUBLIC gRPC::grpc++ protobuf::libprotobuf)
  target_compile_features(${target} PUBLIC cxx_std_17)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()
