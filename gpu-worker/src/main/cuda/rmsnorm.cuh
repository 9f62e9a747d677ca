// rmsnorm.cuh — one row of RMSNorm (rmsnorm.cu's arithmetic, docs there) for the kernels that end in a norm:
// rmsnorm itself and moe_combine_norm (moe_experts.cu), so a fused norm gives the very bits of the separate one.
// Included, never compiled alone.
#pragma once

#include "vec.cuh"

namespace rs_norm {

constexpr int THREADS = 256;
constexpr int CHUNKS = 2; // 8-element chunks per thread on the register path (D <= 4096)

__device__ __forceinline__ float f(unsigned u) {
    return __uint_as_float(u);
}

/** Row r by 8-element chunks held in registers: one load of x (and delta), one of the weight, one store of y. */
__device__ __forceinline__ void rmsnorm_row_vec(rs::bf16_t *__restrict__ yr, float *__restrict__ xr, const float *__restrict__ dr,
                                               const rs::bf16_t *__restrict__ weight, int dim, float eps, float *scratch) {
    const int chunks = dim / 8;
    float v[CHUNKS][8];
    rs::vec16 w[CHUNKS];
    float ss = 0.f;
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        const int c = threadIdx.x + k * THREADS;
        if (c < chunks) {
            const rs::vec16 a = rs::load16_rw(xr + 8 * c);
            const rs::vec16 b = rs::load16_rw(xr + 8 * c + 4);
            w[k] = rs::load16(weight + 8 * c);
            v[k][0] = f(a.x), v[k][1] = f(a.y), v[k][2] = f(a.z), v[k][3] = f(a.w);
            v[k][4] = f(b.x), v[k][5] = f(b.y), v[k][6] = f(b.z), v[k][7] = f(b.w);
            if (dr != nullptr) {
                const rs::vec16 da = rs::load16_rw(dr + 8 * c);
                const rs::vec16 db = rs::load16_rw(dr + 8 * c + 4);
                v[k][0] += f(da.x), v[k][1] += f(da.y), v[k][2] += f(da.z), v[k][3] += f(da.w);
                v[k][4] += f(db.x), v[k][5] += f(db.y), v[k][6] += f(db.z), v[k][7] += f(db.w);
                rs::store16(xr + 8 * c, rs::vec16{__float_as_uint(v[k][0]), __float_as_uint(v[k][1]), __float_as_uint(v[k][2]), __float_as_uint(v[k][3])});
                rs::store16(xr + 8 * c + 4, rs::vec16{__float_as_uint(v[k][4]), __float_as_uint(v[k][5]), __float_as_uint(v[k][6]), __float_as_uint(v[k][7])});
            }
#pragma unroll
            for (int u = 0; u < 8; u++) {
                ss = fmaf(v[k][u], v[k][u], ss);
            }
        }
    }
    ss = rs::block_sum(ss, scratch);
    // correctly rounded sqrt and division (no --use_fast_math), as the reference's 1/sqrt
    const float inv = 1.0f / sqrtf(ss / (float) dim + eps);
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        const int c = threadIdx.x + k * THREADS;
        if (c < chunks) {
            float wf[8];
            rs::unpack8(w[k], wf);
            unsigned short o[8];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                o[u] = rs::f32_to_bf16(wf[u] * (v[k][u] * inv));
            }
            rs::store16(yr + 8 * c, rs::vec16{o[0] | (unsigned) o[1] << 16, o[2] | (unsigned) o[3] << 16, o[4] | (unsigned) o[5] << 16,
                                               o[6] | (unsigned) o[7] << 16});
        }
    }
}

/**
 * y = bf16(w ⊙ (x · 1/sqrt(mean(x²) + eps))) for one row, after x += delta when delta is given (x written back).
 * Called by every thread of a block of THREADS threads; scratch: THREADS / 32 floats of shared memory.
 *
 * @param yr     bf16* (D) out
 * @param xr     float* (D) the residual row
 * @param dr     const float* (D) or null
 * @param weight const bf16* (D)
 */
__device__ __forceinline__ void rmsnorm_row(rs::bf16_t *__restrict__ yr, float *__restrict__ xr, const float *__restrict__ dr,
                                            const rs::bf16_t *__restrict__ weight, int dim, float eps, float *scratch) {
    if ((dim & 7) == 0 && dim <= 8 * CHUNKS * THREADS && rs::aligned16(xr) && rs::aligned16(yr) && rs::aligned16(weight)
        && (dr == nullptr || rs::aligned16(dr))) {
        rmsnorm_row_vec(yr, xr, dr, weight, dim, eps, scratch);
        return;
    }
    float ss = 0.f;
    if (dr != nullptr) {
        for (int i = threadIdx.x; i < dim; i += THREADS) {
            const float v = xr[i] + dr[i];
            xr[i] = v;
            ss = fmaf(v, v, ss);
        }
    } else {
        for (int i = threadIdx.x; i < dim; i += THREADS) {
            const float v = xr[i];
            ss = fmaf(v, v, ss);
        }
    }
    ss = rs::block_sum(ss, scratch);
    // correctly rounded sqrt and division (no --use_fast_math), as the reference's 1/sqrt
    const float inv = 1.0f / sqrtf(ss / (float) dim + eps);
    // each thread reads back only the elements it wrote above, so no barrier is needed
    for (int i = threadIdx.x; i < dim; i += THREADS) {
        yr[i] = rs::f32_to_bf16(rs::bf16_to_f32(weight[i]) * (xr[i] * inv));
    }
}

} // namespace rs_norm
