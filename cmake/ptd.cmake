# Shared CMake helpers for PTDCloud.

# ptd_test(NAME SOURCES... [LIBS ...] [INFRA])
# A Catch2 test binary registered with ctest. INFRA marks tests that need the
# private PostgreSQL and Redis started by the `infra` ctest fixture.
function(ptd_test name)
  cmake_parse_arguments(T "INFRA" "" "SOURCES;LIBS" ${ARGN})
  foreach(src ${T_SOURCES})
    file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/${src} bad REGEX "TEST_CASE\\(\"[^\"]*;")
    if(bad)
      message(FATAL_ERROR "${src}: a TEST_CASE name holds ';', which ctest would split into tests that run nothing: ${bad}")
    endif()
  endforeach()
  add_executable(${name} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/catch_main.cc)
  target_link_libraries(${name} PRIVATE ${T_LIBS} Catch2::Catch2)
  # One variable only: catch_discover_tests flattens lists. Tests derive the rest (tests/testing/testing.h).
  set(props ENVIRONMENT "PTD_BUILD_DIR=${PROJECT_BINARY_DIR}")
  if(T_INFRA)
    list(APPEND props FIXTURES_REQUIRED infra)
  endif()
  catch_discover_tests(${name} PROPERTIES ${props})
endfunction()
