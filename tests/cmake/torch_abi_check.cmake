# cmake -DFLAGS=... -P tests/cmake/torch_abi_check.cmake: runs the configure-time ABI check on
# FLAGS, as CMakeLists.txt does with TORCH_CXX_FLAGS. tests/CMakeLists.txt expects it to stop
# with its message for the pre-C++11 ABI and to pass for the C++11 one.
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../cmake")
include(modelpoolTorchAbi)
modelpool_check_torch_abi("${FLAGS}")
message(STATUS "torch ABI accepted: ${FLAGS}")
