// Whether the tests (and the sacc binary built with them) run under AddressSanitizer. Out-of-memory tests
// skip there: ASan reserves terabytes of shadow address space (so an RLIMIT_AS cannot be set under it) and
// aborts on an impossible allocation instead of throwing std::bad_alloc.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define SACC_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SACC_TEST_UNDER_ASAN 1
#endif
#endif

namespace sacc::test {
#if defined(SACC_TEST_UNDER_ASAN)
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif
}  // namespace sacc::test
