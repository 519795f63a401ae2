# Sourced by the device scripts' --prepare steps (bench_ttft.sh, bench_multi_gpu.sh): copies binaries built
# here, with the shared libraries the GPU image lacks, into one folder to carry to the device.
#   carry_binaries DEST BINARY...
# The image has CUDA 13 (cuBLAS/cuBLASLt, and NCCL inside PyTorch's pip package) but not Debian's libfmt,
# OpenBLAS (+ gfortran, quadmath), PCRE2, zlib, GoogleTest or cpp-httplib (`sacc serve`; + brotli, OpenSSL 3).
carry_binaries() {
  local dest=$1
  shift
  mkdir -p "$dest"
  local binary
  for binary in "$@"; do
    cp "$binary" "$dest/"
    # scripts/build_variant.sh writes the commit a copy was built from beside it.
    if [ -f "$binary.COMMIT" ]; then cp "$binary.COMMIT" "$dest/"; fi
    ldd "$binary" | awk '/=> \// {print $3}' |
      { grep -E 'libfmt|libopenblas|libpcre2|libgfortran|libquadmath|libz\.|libgtest|libgmock|libcpp-httplib|libbrotli|libssl|libcrypto' || true; } |
      while read -r lib; do cp -L "$lib" "$dest/"; done
  done
}
