// IEEE 754 binary16 ("float16", numpy's float16, HDF5 "<f2") conversions for the store. Maps are
// stored as binary16 to halve their size; they are for viewing, so analysis reads them back as
// float32. Not bfloat16 (NumPy has no native bfloat16). Bit-exact with the x86 F16C instructions,
// which are used when the CPU has them; a portable scalar path gives the same bits elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attnscope::store {

/// binary32 -> binary16 bits, rounding to nearest, ties to even. Subnormal results are kept
/// (smallest 2^-24), overflow (|x| >= 65520) gives +-inf, NaN stays NaN with its sign, made quiet
/// (bit 9 set) and keeping the top 9 payload bits (as F16C's VCVTPS2PH does).
std::uint16_t float_to_half(float value) noexcept;

/// binary16 bits -> binary32; exact (every binary16 value is a binary32 value). NaN stays NaN
/// with its sign and payload, made quiet (as F16C's VCVTPH2PS does).
float half_to_float(std::uint16_t bits) noexcept;

/// Converts `n` floats; `in` and `out` must not overlap. Same bits as float_to_half.
void floats_to_halves(const float* in, std::uint16_t* out, std::size_t n) noexcept;

/// Converts `n` binary16 values; `in` and `out` must not overlap. Same values as half_to_float.
void halves_to_floats(const std::uint16_t* in, float* out, std::size_t n) noexcept;

namespace detail {
/// The portable paths, exposed so tests can compare them with the F16C paths.
void floats_to_halves_scalar(const float* in, std::uint16_t* out, std::size_t n) noexcept;
void halves_to_floats_scalar(const std::uint16_t* in, float* out, std::size_t n) noexcept;
/// True when the vector (F16C) paths are in use on this CPU.
bool has_f16c() noexcept;
}  // namespace detail

}  // namespace attnscope::store
