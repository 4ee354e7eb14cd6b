# Warnings and sanitizers for modelpool's own targets (not for consumers of the installed SDK).

include(modelpoolTorchAbi)

if(MODELPOOL_SANITIZE)
  # -g1: line tables, so that reports name files and lines, at about half the compile time of
  # full debug information (measured: 11 s against 22 s for a libtorch-heavy file under ASan).
  add_compile_options(-fsanitize=${MODELPOOL_SANITIZE} -fno-omit-frame-pointer -g1)
  add_link_options(-fsanitize=${MODELPOOL_SANITIZE})
  if(MODELPOOL_SANITIZE MATCHES "undefined")
    # vptr checks need every library's type info to be visible, and libtorch's is not.
    add_compile_options(-fno-sanitize-recover=undefined -fno-sanitize=vptr)
  endif()
endif()

if(MODELPOOL_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MODELPOOL_BUILD_FUZZERS needs clang (libFuzzer)")
  endif()
  # Coverage for libFuzzer in every object; only the fuzzers link its main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# modelpool_warnings(target): the warnings our code must build clean with.
function(modelpool_warnings target)
  target_compile_options(${target} PRIVATE
      "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wno-unused-parameter;-Wno-missing-field-initializers>")
  # Not with gcc and sanitizers: instrumented code gives gcc's flow analysis false positives
  # (-Wmaybe-uninitialized inside absl::InlinedVector with ASan at -O2), and gcc's manual
  # advises against combining -Werror with sanitizers. The plain gcc build and the clang
  # sanitizer builds still treat warnings as errors.
  if(MODELPOOL_WERROR AND NOT (MODELPOOL_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU"))
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:-Werror>")
  endif()
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    target_compile_options(${target} PRIVATE
        "$<$<COMPILE_LANGUAGE:CXX>:-Wthread-safety;-Werror=thread-safety>")
  endif()
endfunction()
