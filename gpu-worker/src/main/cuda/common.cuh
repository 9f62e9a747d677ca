// common.cuh — device helpers shared by the kernels in this folder (included, never compiled alone).
//
// bf16 is handled as its raw bit pattern (unsigned short, little-endian as in safetensors), so the
// kernels need no cuda_bf16.h and the same code also compiles for the CPU emulator used by the
// kernel unit harness (gpu-worker/src/test/cuda/emu). Conversions round to nearest even, as PyTorch
// and io.ringserve.worker.weights.Bf16 do.
#pragma once

#include <stdint.h>

namespace rs {

typedef unsigned short bf16_t; // raw bfloat16 bits

constexpr unsigned FULL_MASK = 0xffffffffu;
constexpr int WARP = 32;

// ---- bf16 <-> fp32 ---------------------------------------------------------------------------

/** bf16 bits → float (exact: bf16 is the upper half of a float32). */
__device__ __forceinline__ float bf16_to_f32(bf16_t b) {
    return __uint_as_float(((unsigned) b) << 16);
}

/** float → bf16 bits, round to nearest even; NaN stays a (quiet) NaN, overflow rounds to ±inf. */
__device__ __forceinline__ bf16_t f32_to_bf16(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (bf16_t) ((u >> 16) | 0x0040u);
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16_t) (u >> 16);
}

/** Rounds a float to the nearest bf16 value and returns it as a float. */
__device__ __forceinline__ float round_bf16(float f) {
    return bf16_to_f32(f32_to_bf16(f));
}

// ---- warp reductions (all 32 lanes of the warp must call them) -------------------------------

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) {
        v += __shfl_xor_sync(FULL_MASK, v, m);
    }
    return v;
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) {
        v += __shfl_xor_sync(FULL_MASK, v, m);
    }
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, m));
    }
    return v;
}

/**
 * Warp argmax over (value, index) pairs: the largest value, the lowest index among equal values.
 * Callers pass value = -INFINITY and index = INT_MAX for "no candidate"; NaN values must be
 * filtered out by the caller (they never compare greater). Every lane gets the result.
 */
__device__ __forceinline__ void warp_argmax(float &value, int &index) {
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) {
        float ov = __shfl_xor_sync(FULL_MASK, value, m);
        int oi = __shfl_xor_sync(FULL_MASK, index, m);
        if (ov > value || (ov == value && oi < index)) {
            value = ov;
            index = oi;
        }
    }
}

// ---- block reductions ------------------------------------------------------------------------
// scratch: shared memory of at least blockDim.x / 32 elements, not used by the caller between the
// two __syncthreads() these functions contain; blockDim.x must be a multiple of 32. Every thread
// of the block must call them and every thread gets the result. Deterministic: fixed tree order.

__device__ __forceinline__ float block_sum(float v, float *scratch) {
    const int lane = threadIdx.x % WARP;
    const int warp = threadIdx.x / WARP;
    const int warps = blockDim.x / WARP;
    v = warp_sum(v);
    __syncthreads(); // the scratch may still be read by a previous call
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    float r = 0.f;
    for (int w = 0; w < warps; w++) {
        r += scratch[w]; // every thread sums the same values in the same order
    }
    return r;
}

__device__ __forceinline__ float block_max(float v, float *scratch) {
    const int lane = threadIdx.x % WARP;
    const int warp = threadIdx.x / WARP;
    const int warps = blockDim.x / WARP;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    float r = scratch[0];
    for (int w = 1; w < warps; w++) {
        r = fmaxf(r, scratch[w]);
    }
    return r;
}

// ---- dynamic shared memory -------------------------------------------------------------------

/** The block's dynamic shared memory (the launch's sharedBytes), 16-byte aligned. */
template <typename T>
__device__ __forceinline__ T *dynamic_smem() {
#ifdef RS_CPU_EMULATION
    return reinterpret_cast<T *>(rs_emu_dynamic_smem());
#else
    extern __shared__ __align__(16) unsigned char rs_dynamic_smem_[];
    return reinterpret_cast<T *>(rs_dynamic_smem_);
#endif
}

} // namespace rs
