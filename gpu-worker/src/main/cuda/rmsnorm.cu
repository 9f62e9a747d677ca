// rmsnorm.cu — RMSNorm of the fp32 residual stream into a bf16 activation for the next GEMV, with the
// residual add of the previous sub-layer optionally fused in front:
//     x += delta                       (when delta != null; x is written back, fp32)
//     y  = bf16( w ⊙ (x · 1/sqrt(mean(x²) + eps)) )
// Mirrors ReferenceOps.add + ReferenceOps.rmsnorm (same operation order: w·(x·inv)). The reference
// sums x² in double; here each thread sums in fp32 and the block reduces in a fixed order, which
// changes inv by a few fp32 ulp, far below the bf16 rounding of the output. HF rounds twice
// (bf16(w ⊙ bf16(y))); one rounding is closer to the float64 reference (MODEL.md §11).
//
// Legend: T = rows (tokens), D = hidden (or head dim for a per-head norm).
//
// Launch contract (kernel rmsnorm):
//   grid  (T, 1, 1)     one block per row
//   block (256, 1, 1)   threads stride over the row; warp-shuffle then cross-warp reduction of Σx²
//   dynamic shared memory: 0 (static 8 floats for the reduction)
//
// Arguments:
//   out     bf16*          [T, D]  normalised rows
//   x       float*         [T, D]  residual stream; updated in place when delta != null
//   delta   const float*   [T, D]  the sub-layer output to add first, or null
//   weight  const bf16*    [D]     the norm's weight (input_layernorm, post_attention_layernorm, norm)
//   rows, dim              ints as named
//   eps     float          rms_norm_eps
#include "common.cuh"

namespace {
constexpr int THREADS = 256;
}

extern "C" __global__ void __launch_bounds__(THREADS)
rmsnorm(rs::bf16_t *__restrict__ out, float *__restrict__ x, const float *__restrict__ delta, const rs::bf16_t *__restrict__ weight,
        int rows, int dim, float eps) {
    __shared__ float scratch[THREADS / rs::WARP];
    const int r = blockIdx.x;
    if (r >= rows) {
        return;
    }
    float *xr = x + (size_t) r * dim; // (D)
    float ss = 0.f;
    if (delta != nullptr) {
        const float *dr = delta + (size_t) r * dim; // (D)
        for (int i = threadIdx.x; i < dim; i += blockDim.x) {
            const float v = xr[i] + dr[i];
            xr[i] = v;
            ss = fmaf(v, v, ss);
        }
    } else {
        for (int i = threadIdx.x; i < dim; i += blockDim.x) {
            const float v = xr[i];
            ss = fmaf(v, v, ss);
        }
    }
    ss = rs::block_sum(ss, scratch);
    // correctly rounded sqrt and division (no --use_fast_math), as the reference's 1/sqrt
    const float inv = 1.0f / sqrtf(ss / (float) dim + eps);
    rs::bf16_t *yr = out + (size_t) r * dim; // (D)
    // each thread reads back only the elements it wrote above, so no barrier is needed
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        yr[i] = rs::f32_to_bf16(rs::bf16_to_f32(weight[i]) * (xr[i] * inv));
    }
}
