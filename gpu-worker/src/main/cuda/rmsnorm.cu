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
//   block (256, 1, 1)   threads stride over the row; warp-shuffle then cross-warp reduction of Σx². Rows of
//                       D % 8 == 0, D <= 4096 (16-byte aligned) are held in registers between the two passes,
//                       8 elements per 16-byte access; other rows go element by element
//   dynamic shared memory: 0 (static 8 floats for the reduction)
//
// Arguments:
//   out     bf16*          [T, D]  normalised rows
//   x       float*         [T, D]  residual stream; updated in place when delta != null
//   delta   const float*   [T, D]  the sub-layer output to add first, or null
//   weight  const bf16*    [D]     the norm's weight (input_layernorm, post_attention_layernorm, norm)
//   rows, dim              ints as named
//   eps     float          rms_norm_eps
#include "rmsnorm.cuh"

using rs_norm::THREADS;

extern "C" __global__ void __launch_bounds__(THREADS)
rmsnorm(rs::bf16_t *__restrict__ out, float *__restrict__ x, const float *__restrict__ delta, const rs::bf16_t *__restrict__ weight,
        int rows, int dim, float eps) {
    __shared__ float scratch[THREADS / rs::WARP];
    const int r = blockIdx.x;
    if (r >= rows) {
        return;
    }
    rs_norm::rmsnorm_row(out + (size_t) r * dim, x + (size_t) r * dim, delta == nullptr ? nullptr : delta + (size_t) r * dim, weight, dim, eps,
                         scratch);
}
