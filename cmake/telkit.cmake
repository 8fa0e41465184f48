# Build helpers shared by every folder: one way to declare a test or a tool.

set(TELKIT_WARNINGS -Wall -Wextra -Wpedantic -Wno-unused-parameter)
if(TELKIT_FUZZ)
  # Instrument the whole library, so libFuzzer gets coverage from libtelkit too.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(TELKIT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# telkit_test(NAME SOURCES a_test.cpp ... [LIBS extra...])
# A GoogleTest binary linked against libtelkit; each TEST becomes a CTest test.
function(telkit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_compile_options(${name} PRIVATE ${TELKIT_WARNINGS})
  target_link_libraries(${name} PRIVATE telkit GTest::gtest_main GTest::gmock ${T_LIBS})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)
endfunction()

# telkit_tool(NAME) builds tools/NAME/main.cpp into the command NAME.
function(telkit_tool name)
  add_executable(${name} main.cpp)
  target_compile_options(${name} PRIVATE ${TELKIT_WARNINGS})
  target_link_libraries(${name} PRIVATE telkit)
  install(TARGETS ${name} RUNTIME DESTINATION bin)
endfunction()

# telkit_fuzzer(NAME SOURCE) builds a libFuzzer target when TELKIT_FUZZ is on.
function(telkit_fuzzer name source)
  if(TELKIT_FUZZ)
    add_executable(${name} ${source})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE telkit)
  endif()
endfunction()
