# Every dependency comes from a Debian package (scripts/install-deps.sh installs them).
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(ZLIB REQUIRED)
# Debian's dnnl-config.cmake insists on OpenCL headers for the GPU runtime we do not use:
# find the CPU library directly.
find_path(SB_DNNL_INCLUDE_DIR dnnl.hpp REQUIRED)
find_library(SB_DNNL_LIBRARY NAMES dnnl REQUIRED)
add_library(DNNL::dnnl UNKNOWN IMPORTED)
set_target_properties(DNNL::dnnl PROPERTIES IMPORTED_LOCATION ${SB_DNNL_LIBRARY}
                      INTERFACE_INCLUDE_DIRECTORIES ${SB_DNNL_INCLUDE_DIR})
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)

# --- CUDA: on when nvcc is found (AUTO), forced with ON, skipped with OFF ---------------------
set(SB_HAVE_CUDA OFF)
if(NOT SB_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # sm_90a for Hopper-only instructions (wgmma, sparse tensor cores through PTX), sm_90 as the
      # portable Hopper target, compute_80 PTX so that other recent GPUs can JIT.
      set(CMAKE_CUDA_ARCHITECTURES 90a 90 80-virtual)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no CUDA20 flags for nvcc
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(SB_HAVE_CUDA ON)
  elseif(SB_CUDA STREQUAL "ON")
    message(FATAL_ERROR "SB_CUDA=ON but no CUDA compiler was found (looked for nvcc in PATH and /usr/local/cuda/bin)")
  endif()
endif()

# --- libtorch (Debian libtorch-dev): reference executions and training ----------------------
set(SB_HAVE_TORCH OFF)
if(NOT SB_TORCH STREQUAL "OFF")
  find_package(Torch QUIET)
  if(Torch_FOUND)
    set(SB_HAVE_TORCH ON)
  elseif(SB_TORCH STREQUAL "ON")
    message(FATAL_ERROR "SB_TORCH=ON but libtorch was not found (apt-get install libtorch-dev)")
  endif()
endif()

# --- ONNX (Debian libonnx-dev 1.12 + protobuf): model import / sparse export (M6) ----------------
set(SB_ONNX "AUTO" CACHE STRING "ONNX import/export (libonnx-dev): AUTO, ON, OFF")
set(SB_HAVE_ONNX OFF)
if(NOT SB_ONNX STREQUAL "OFF")
  find_package(Protobuf QUIET)
  if(Protobuf_FOUND)
    find_package(ONNX QUIET)
  endif()
  if(ONNX_FOUND AND TARGET onnx_proto)
    set(SB_HAVE_ONNX ON)
  elseif(SB_ONNX STREQUAL "ON")
    message(FATAL_ERROR "SB_ONNX=ON but libonnx was not found (apt-get install libonnx-dev libprotobuf-dev)")
  endif()
endif()
