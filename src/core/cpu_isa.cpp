#include "core/cpu_isa.h"

#include <cstdlib>
#include <cstring>

#include "core/log.h"

namespace sacc {

bool parse_cpu_isa_cap(const char* value, CpuIsaCap* cap) {
  if (value == nullptr || *value == '\0') {
    *cap = CpuIsaCap::NONE;
  } else if (std::strcmp(value, "avx512") == 0) {
    *cap = CpuIsaCap::AVX512;
  } else if (std::strcmp(value, "avx2") == 0) {
    *cap = CpuIsaCap::AVX2;
  } else if (std::strcmp(value, "scalar") == 0) {
    *cap = CpuIsaCap::SCALAR;
  } else {
    return false;
  }
  return true;
}

CpuIsaCap cpu_isa_cap() {
  static const CpuIsaCap cap = [] {
    const char* value = std::getenv("SACC_CPU_ISA");
    CpuIsaCap parsed = CpuIsaCap::NONE;
    if (!parse_cpu_isa_cap(value, &parsed)) {
      SACC_LOG_WARN("SACC_CPU_ISA={} is not one of avx512, avx2, scalar; ignored", value);
      parsed = CpuIsaCap::NONE;
    }
    return parsed;
  }();
  return cap;
}

}  // namespace sacc
