// The parsers of files take a path: each harness writes its input to one file of its own on tmpfs
// (/dev/shm, else $TMPDIR) and hands that path over. One file per process, so parallel jobs never share one.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace sacc::fuzz {

class ScratchFile {
 public:
  // `name` is the file name the parser expects (tokenizer.json, config.json, ...).
  explicit ScratchFile(const std::string& name) {
    std::error_code ec;
    const std::filesystem::path root =
        std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : std::filesystem::temp_directory_path();
    dir_ = root / ("sacc_fuzz_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / name).string();
  }
  ~ScratchFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Replaces the file's contents with the input; the path to parse.
  const std::string& write(const uint8_t* data, size_t size) {
    FILE* file = std::fopen(path_.c_str(), "wb");
    if (file == nullptr) std::abort();  // the harness's own failure, not the parser's
    if (size > 0 && std::fwrite(data, 1, size, file) != size) std::abort();
    std::fclose(file);
    return path_;
  }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

}  // namespace sacc::fuzz
