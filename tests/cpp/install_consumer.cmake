# cmake -P script behind the cpp.install_consumer test: installs the built
# lrcore into a fresh prefix, then configures, builds and runs examples/cpp
# against it through find_package(lrcore CONFIG), the way a user would.
#
# Inputs (-D): LRCORE_BUILD_DIR, CONSUMER_SOURCE_DIR, WORK_DIR, BUILD_CONFIG,
# GENERATOR, MAKE_PROGRAM, CXX_COMPILER.
cmake_minimum_required(VERSION 3.18)

if(NOT BUILD_CONFIG)
  set(BUILD_CONFIG Release)
endif()
set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})

function(run_step description)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${description} failed (${result}): ${ARGN}")
  endif()
endfunction()

run_step("install" ${CMAKE_COMMAND} --install ${LRCORE_BUILD_DIR} --prefix ${prefix} --config ${BUILD_CONFIG})

foreach(required include/lrcore/lrcore.hpp)
  if(NOT EXISTS ${prefix}/${required})
    message(FATAL_ERROR "install is missing ${required}")
  endif()
endforeach()

set(make_program)
if(MAKE_PROGRAM)
  set(make_program -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()

# Only the install prefix is searched: the build tree must not leak in.
run_step("configure the consumer"
  ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${consumer_build}
    -G ${GENERATOR} ${make_program}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    -DCMAKE_BUILD_TYPE=${BUILD_CONFIG}
    -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
run_step("build the consumer" ${CMAKE_COMMAND} --build ${consumer_build} --config ${BUILD_CONFIG})

find_program(example logistic_regression
  PATHS ${consumer_build} ${consumer_build}/${BUILD_CONFIG} NO_DEFAULT_PATH REQUIRED)
run_step("run the consumer" ${example})
