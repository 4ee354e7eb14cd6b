# modelpool_check_torch_abi(FLAGS): stops the configure when FLAGS (libtorch's TORCH_CXX_FLAGS,
# known once find_package(Torch) has run) say libtorch was built with the pre-C++11 ABI of
# std::string, which cannot be linked with the system's Abseil (built with the new one).
function(modelpool_check_torch_abi flags)
  if(flags MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
    message(FATAL_ERROR
            "modelpool: this libtorch uses the pre-C++11 ABI (TORCH_CXX_FLAGS: ${flags}) and "
            "cannot be linked with the system's Abseil. Use a libtorch built with the C++11 ABI: "
            "PyTorch 2.7 or later, or the cxx11 ABI archive from pytorch.org.")
  endif()
endfunction()
