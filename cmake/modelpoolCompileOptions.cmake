# Warnings and sanitizers for modelpool's own targets (not for consumers of the installed SDK).

include(modelpoolTorchAbi)

if(MODELPOOL_SANITIZE)
  add_compile_options(-fsanitize=${MODELPOOL_SANITIZE} -fno-omit-frame-pointer -g)
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
  if(MODELPOOL_WERROR)
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:-Werror>")
  endif()
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    target_compile_options(${target} PRIVATE
        "$<$<COMPILE_LANGUAGE:CXX>:-Wthread-safety;-Werror=thread-safety>")
  endif()
endfunction()
