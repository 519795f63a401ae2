# Build-time needs of the dense baselines (cudnn_sdpa.cpp, eager_attention.cu), included from
# src/attention/CMakeLists.txt when CUDA is on.
#
# cuDNN itself is NOT linked: cudnn_sdpa.cpp compiles the cudnn-frontend headers in their dynamic-loading mode and
# dlopens libcudnn.so.9 at run time, so a binary built here runs on machines without cuDNN (the cuDNN path then
# reports UNSUPPORTED). The build needs only the headers: cudnn-frontend (PyPI `nvidia-cudnn-frontend`, pinned in
# scripts/requirements.txt) and the cuDNN 9 backend headers (cudnn.h: the CUDA toolkit's, a Debian/NVIDIA package,
# or PyPI `nvidia-cudnn-cu13`).

set(SACC_CUDNN_FRONTEND_INCLUDE "" CACHE PATH "Folder holding cudnn_frontend.h (default: found via python3)")
set(SACC_CUDNN_INCLUDE "" CACHE PATH "Folder holding cuDNN 9's cudnn.h (default: CUDA toolkit, /usr/include, pip)")

find_program(SACC_PYTHON3 python3)

# Asks python3 where an installed wheel put a file: prints the folder holding `suffix` inside distribution `dist`.
function(sacc_wheel_folder out dist suffix)
  set(${out} "" PARENT_SCOPE)
  if(NOT SACC_PYTHON3)
    return()
  endif()
  execute_process(
    COMMAND ${SACC_PYTHON3} -c
      "import importlib.metadata as m\ntry:\n  d = m.distribution('${dist}')\n  print(next(str(d.locate_file(f).parent) for f in (d.files or []) if str(f).endswith('${suffix}')))\nexcept Exception:\n  pass"
    OUTPUT_VARIABLE folder OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  set(${out} "${folder}" PARENT_SCOPE)
endfunction()

if(NOT SACC_CUDNN_FRONTEND_INCLUDE OR NOT EXISTS "${SACC_CUDNN_FRONTEND_INCLUDE}/cudnn_frontend.h")
  sacc_wheel_folder(wheel_frontend nvidia-cudnn-frontend "include/cudnn_frontend.h")
  find_path(SACC_CUDNN_FRONTEND_FOUND cudnn_frontend.h HINTS ${wheel_frontend} /usr/include /usr/local/include NO_CACHE)
  set(SACC_CUDNN_FRONTEND_INCLUDE "${SACC_CUDNN_FRONTEND_FOUND}" CACHE PATH "" FORCE)
endif()
if(NOT SACC_CUDNN_FRONTEND_INCLUDE OR NOT EXISTS "${SACC_CUDNN_FRONTEND_INCLUDE}/cudnn_frontend.h")
  message(FATAL_ERROR
    "CUDA is on but the cudnn-frontend headers (cudnn_frontend.h) were not found. Install them with "
    "`python3 -m pip install -r scripts/requirements.txt` (PyPI nvidia-cudnn-frontend), point "
    "-DSACC_CUDNN_FRONTEND_INCLUDE=<folder> at them, or build without CUDA (-DSACC_CUDA=OFF).")
endif()

if(NOT SACC_CUDNN_INCLUDE OR NOT EXISTS "${SACC_CUDNN_INCLUDE}/cudnn.h")
  sacc_wheel_folder(wheel_cudnn nvidia-cudnn-cu13 "include/cudnn.h")
  find_path(SACC_CUDNN_FOUND cudnn.h
    HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include /usr/include/x86_64-linux-gnu ${wheel_cudnn} NO_CACHE)
  set(SACC_CUDNN_INCLUDE "${SACC_CUDNN_FOUND}" CACHE PATH "" FORCE)
endif()
if(NOT SACC_CUDNN_INCLUDE OR NOT EXISTS "${SACC_CUDNN_INCLUDE}/cudnn.h")
  message(FATAL_ERROR
    "CUDA is on but cuDNN 9's headers (cudnn.h) were not found. Install cuDNN 9 headers (Debian: libcudnn9-dev-cuda-13; "
    "PyPI: nvidia-cudnn-cu13), point -DSACC_CUDNN_INCLUDE=<folder> at them, or build with -DSACC_CUDA=OFF.")
endif()
message(STATUS "SparseAccelerate: cudnn-frontend headers ${SACC_CUDNN_FRONTEND_INCLUDE}, cuDNN headers ${SACC_CUDNN_INCLUDE}")

# Only the cuDNN translation unit sees these headers (large, C++17); -isystem keeps their warnings out of ours.
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cudnn_sdpa.cpp PROPERTIES
  COMPILE_OPTIONS "-isystem;${SACC_CUDNN_FRONTEND_INCLUDE};-isystem;${SACC_CUDNN_INCLUDE}")
# eager attention's GEMMs.
target_link_libraries(sacc_attention PUBLIC CUDA::cublas ${CMAKE_DL_LIBS})
