// vec.cuh — 16-byte vector access for the memory-bound kernels (embedding, gemv, matmul): one load
// moves 8 bf16 (or 4 floats), the widest access a thread can issue. Included, never compiled alone.
//
// A 16-byte access needs a 16-byte aligned address: callers check the base pointers with aligned16()
// and the row length (8 bf16 per vector: a multiple of 8 elements) and fall back to scalar code
// otherwise. Device allocations are 256-byte aligned, so only slices can be misaligned.
#pragma once

#include "common.cuh"

namespace rs {

#ifdef RS_CPU_EMULATION
struct alignas(16) vec16 {
    unsigned x, y, z, w;
};
#else
typedef uint4 vec16;
#endif

__device__ __forceinline__ bool aligned16(const void *p) {
    return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

/** 16 bytes through the read-only data path (weights, inputs a kernel never writes). */
__device__ __forceinline__ vec16 load16(const void *p) {
    return __ldg(reinterpret_cast<const vec16 *>(p));
}

/** 16 bytes from shared memory (or any memory the kernel may also write). */
__device__ __forceinline__ vec16 load16_rw(const void *p) {
    return *reinterpret_cast<const vec16 *>(p);
}

__device__ __forceinline__ void store16(void *p, vec16 v) {
    *reinterpret_cast<vec16 *>(p) = v;
}

/** Element 2i of a packed pair is the low half of word i (little-endian memory order). */
__device__ __forceinline__ float bf16_lo(unsigned word) {
    return __uint_as_float(word << 16);
}

__device__ __forceinline__ float bf16_hi(unsigned word) {
    return __uint_as_float(word & 0xffff0000u);
}

/** The 8 bf16 of a vector as floats, in memory order (exact). */
__device__ __forceinline__ void unpack8(vec16 v, float (&f)[8]) {
    f[0] = bf16_lo(v.x);
    f[1] = bf16_hi(v.x);
    f[2] = bf16_lo(v.y);
    f[3] = bf16_hi(v.y);
    f[4] = bf16_lo(v.z);
    f[5] = bf16_hi(v.z);
    f[6] = bf16_lo(v.w);
    f[7] = bf16_hi(v.w);
}

/** sum_i a[i]·b[i] over two vectors of 8 bf16, in fp32 (each product is exact in fp32). */
__device__ __forceinline__ float dot8(vec16 a, vec16 b) {
    float s = bf16_lo(a.x) * bf16_lo(b.x);
    s = fmaf(bf16_hi(a.x), bf16_hi(b.x), s);
    s = fmaf(bf16_lo(a.y), bf16_lo(b.y), s);
    s = fmaf(bf16_hi(a.y), bf16_hi(b.y), s);
    s = fmaf(bf16_lo(a.z), bf16_lo(b.z), s);
    s = fmaf(bf16_hi(a.z), bf16_hi(b.z), s);
    s = fmaf(bf16_lo(a.w), bf16_lo(b.w), s);
    s = fmaf(bf16_hi(a.w), bf16_hi(b.w), s);
    return s;
}

} // namespace rs
