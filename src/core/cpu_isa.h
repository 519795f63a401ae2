// The one run-time override of the CPU kernels' instruction sets: SACC_CPU_ISA=avx512|avx2|scalar caps what
// the CPU kernels may use below what CPUID reports (the quantised dot products, the activation quantisation
// and the attention's inner loops each still check CPUID and take the best set within the cap). Unset or
// empty: no cap. For measuring the kernel families against each other on one machine and for working around a
// suspected miscompiled or misdetected path.
#pragma once

namespace sacc {

// Ordered: a cap allows its own level and every level below.
enum class CpuIsaCap { SCALAR = 0, AVX2 = 1, AVX512 = 2, NONE = 3 };

// Parses a SACC_CPU_ISA value ("avx512", "avx2", "scalar"; nullptr or "" = NONE); false for anything else.
bool parse_cpu_isa_cap(const char* value, CpuIsaCap* cap);

// SACC_CPU_ISA read once per process; an unknown value is warned about once and ignored (NONE).
CpuIsaCap cpu_isa_cap();

}  // namespace sacc
