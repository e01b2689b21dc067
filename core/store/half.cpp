// binary32 <-> binary16 conversions: a portable scalar path and, on x86-64 CPUs that have it,
// F16C (8 values per instruction). Both produce identical bits; tests/store checks that on
// special values and random inputs.
#include "core/store/half.h"

#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ATTNSCOPE_STORE_F16C 1
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace attnscope::store {
namespace {

std::uint32_t bits_of(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

float float_of(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

}  // namespace

std::uint16_t float_to_half(float value) noexcept {
    const std::uint32_t x = bits_of(value);
    const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {  // inf or NaN
        if (ax == 0x7f800000u) return sign | 0x7c00u;
        return static_cast<std::uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x03ffu));
    }
    if (ax >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520: rounds to inf
    if (ax <= 0x33000000u) return sign;            // <= 2^-25: rounds to +-0 (tie goes to even 0)
    const std::uint32_t e = ax >> 23;              // biased binary32 exponent
    if (e < 113) {
        // Result is a binary16 subnormal (or rounds up to the smallest normal, 0x0400, which the
        // carry encodes correctly). value = m * 2^(e-150), unit 2^-24: shift m right by 126-e.
        const std::uint32_t m = (ax & 0x007fffffu) | 0x00800000u;
        const std::uint32_t shift = 126 - e;  // 14..24
        std::uint32_t r = m >> shift;
        const std::uint32_t rem = m & ((1u << shift) - 1);
        const std::uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (r & 1u))) ++r;
        return static_cast<std::uint16_t>(sign | r);
    }
    // Normal: rebias exponent (127 -> 15) and round the 13 dropped mantissa bits; a mantissa carry
    // moves into the exponent, which is the correctly rounded result.
    std::uint32_t r = ((e - 112) << 10) | ((ax >> 13) & 0x03ffu);
    const std::uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
    return static_cast<std::uint16_t>(sign | r);
}

float half_to_float(std::uint16_t bits) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
    const std::uint32_t exp = (bits >> 10) & 0x1fu;
    std::uint32_t man = bits & 0x03ffu;
    if (exp == 0x1f) {
        if (man == 0) return float_of(sign | 0x7f800000u);  // inf
        return float_of(sign | 0x7fc00000u | (man << 13));  // NaN, made quiet as F16C does
    }
    if (exp != 0) return float_of(sign | ((exp + 112) << 23) | (man << 13));
    if (man == 0) return float_of(sign);
    // Subnormal: normalise. value = man * 2^-24.
    std::uint32_t e = 113;
    while ((man & 0x0400u) == 0) {
        man <<= 1;
        --e;
    }
    return float_of(sign | (e << 23) | ((man & 0x03ffu) << 13));
}

namespace detail {

void floats_to_halves_scalar(const float* in, std::uint16_t* out, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) out[i] = float_to_half(in[i]);
}

void halves_to_floats_scalar(const std::uint16_t* in, float* out, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) out[i] = half_to_float(in[i]);
}

#ifdef ATTNSCOPE_STORE_F16C

bool has_f16c() noexcept {
    // CPUID leaf 1, ECX bit 29 (F16C). Not __builtin_cpu_supports("f16c"): GCC knows that
    // feature name, clang 14 rejects it at compile time ("invalid cpu feature string").
    static const bool yes = [] {
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
        return (ecx & bit_F16C) != 0 && __builtin_cpu_supports("avx");
    }();
    return yes;
}

namespace {

__attribute__((target("avx,f16c"))) void to_halves_f16c(const float* in, std::uint16_t* out,
                                                        std::size_t n) noexcept {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(in + i);
        const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
    }
    for (; i < n; ++i) out[i] = float_to_half(in[i]);
}

__attribute__((target("avx,f16c"))) void to_floats_f16c(const std::uint16_t* in, float* out,
                                                        std::size_t n) noexcept {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; ++i) out[i] = half_to_float(in[i]);
}

}  // namespace

#else

bool has_f16c() noexcept { return false; }

#endif

}  // namespace detail

void floats_to_halves(const float* in, std::uint16_t* out, std::size_t n) noexcept {
#ifdef ATTNSCOPE_STORE_F16C
    if (detail::has_f16c()) return detail::to_halves_f16c(in, out, n);
#endif
    detail::floats_to_halves_scalar(in, out, n);
}

void halves_to_floats(const std::uint16_t* in, float* out, std::size_t n) noexcept {
#ifdef ATTNSCOPE_STORE_F16C
    if (detail::has_f16c()) return detail::to_floats_f16c(in, out, n);
#endif
    detail::halves_to_floats_scalar(in, out, n);
}

}  // namespace attnscope::store
