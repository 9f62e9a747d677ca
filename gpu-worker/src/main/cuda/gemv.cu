// gemv.cu — y = x · Wᵀ for a few tokens (T <= 8, decode): the memory-bound path of every linear
// layer. W is bf16 row-major [N, K] as nn.Linear and the checkpoint store it (reference.Matrix), x is
// bf16, products are accumulated in fp32 and y is fp32. Mirrors ReferenceOps.matmul.
//
// Legend: T = tokens (1..8), N = output features (rows of W), K = input features.
//
// Decode reads every weight byte once per step, so the kernel is built to keep bytes in flight:
// one warp per output row streams that row with 16-byte loads (8 bf16 per lane), UNROLL loads
// issued before the first is used; x is staged in shared memory once per block and read back
// as 16-byte vectors (conflict-free: consecutive lanes read consecutive 16 bytes); all T tokens
// are served by the same pass over the row, so a row is read once whatever T is. The T
// accumulators are registers (T is a template parameter, one entry point per T).
//
// Optional epilogue: accumulate != 0 adds into y (y += x·Wᵀ), e.g. the dense (o_proj) or down
// projection writing straight into the fp32 residual stream.
//
// SwiGLU variant (gemv_swiglu_bf16_T): W is a stacked [gate; up] weight [2·I, K] (the dense MLP's and
// the shared expert's packed gate_up) and the output is h = silu(x·W_gateᵀ) ⊙ (x·W_upᵀ) as bf16 [T, I]:
// each warp streams gate row i and up row I + i together and applies silu_mul.cu's arithmetic to its
// two sums, so h is bit for bit what gemv_bf16_T followed by silu_mul gives, in one launch and
// without the fp32 [T, 2·I] round trip.
//
// Launch contract (kernels gemv_bf16_1 .. gemv_bf16_8, the suffix is T):
//   grid  (ceil(N / 8), 1, 1)   8 rows per block, one per warp
//   block (256, 1, 1)
//   dynamic shared memory: T · min(K, 2048) · 2 bytes (x in chunks of K_CHUNK = 2048 columns)
//   vector path when K % 8 == 0 and x, W are 16-byte aligned; else scalar loads (any K)
//
// Launch contract (kernels gemv_swiglu_bf16_1 .. gemv_swiglu_bf16_8): grid (ceil(I / 8), 1, 1), block and
// dynamic shared memory as above; arguments h bf16* [T, I], x const bf16* [T, K], w const bf16* [2·I, K],
// inter (= I), k ints.
//
// Arguments:
//   y        float*        [T, N]  output (or accumulated into when accumulate != 0)
//   x        const bf16*   [T, K]  input activations
//   w        const bf16*   [N, K]  weight
//   n, k     ints as named
//   accumulate int         0: y = x·Wᵀ; 1: y += x·Wᵀ
#include "vec.cuh"

namespace {

constexpr int THREADS = 256;
constexpr int WARPS = THREADS / rs::WARP;
constexpr int K_CHUNK = 2048; // columns of x staged per pass: 8 tokens · 2048 · 2 B = 32 KiB
constexpr int UNROLL = 4;     // 16-byte weight loads in flight per lane

/**
 * Rows of y = x·Wᵀ, one per warp; SWIGLU: the warp also streams row n + row of W (the up row) and
 * writes h[t, row] = bf16(silu(gate) · up) to `h` instead of y.
 */
template <int T, bool SWIGLU>
__device__ __forceinline__ void gemv_rows(float *__restrict__ y, rs::bf16_t *__restrict__ h, const rs::bf16_t *__restrict__ x,
                                          const rs::bf16_t *__restrict__ w, int n, int k, int accumulate) {
    rs::bf16_t *xs = rs::dynamic_smem<rs::bf16_t>(); // (T, kc) this chunk of x
    const int warp = threadIdx.x / rs::WARP;
    const int lane = threadIdx.x % rs::WARP;
    const int row = blockIdx.x * WARPS + warp; // warp-uniform
    const bool vec = (k & 7) == 0 && rs::aligned16(x) && rs::aligned16(w);

    float acc[T];
    float acc2[T]; // SWIGLU: the up row's sums
#pragma unroll
    for (int t = 0; t < T; t++) {
        acc[t] = 0.f;
        acc2[t] = 0.f;
    }

    for (int k0 = 0; k0 < k; k0 += K_CHUNK) {
        const int kc = min(K_CHUNK, k - k0);
        __syncthreads(); // the previous chunk has been read by every warp
        if (vec) {
            const int kv = kc / 8;
            for (int t = 0; t < T; t++) {
                for (int v = threadIdx.x; v < kv; v += THREADS) {
                    rs::store16(xs + t * kc + 8 * v, rs::load16(x + (size_t) t * k + k0 + 8 * v));
                }
            }
        } else {
            for (int t = 0; t < T; t++) {
                for (int c = threadIdx.x; c < kc; c += THREADS) {
                    xs[t * kc + c] = x[(size_t) t * k + k0 + c];
                }
            }
        }
        __syncthreads();
        if (row >= n) {
            continue; // still reaches the barriers of the next chunk
        }
        const rs::bf16_t *wr = w + (size_t) row * k + k0;        // (kc) this chunk of row `row`
        const rs::bf16_t *wr2 = w + (size_t) (n + row) * k + k0; // SWIGLU: (kc) the up row's chunk
        if (vec) {
            const int kv = kc / 8;
            for (int v0 = lane; v0 < kv; v0 += rs::WARP * UNROLL) {
                rs::vec16 wv[UNROLL];
                rs::vec16 wv2[UNROLL];
#pragma unroll
                for (int u = 0; u < UNROLL; u++) {
                    const int v = v0 + u * rs::WARP;
                    if (v < kv) {
                        wv[u] = rs::load16(wr + 8 * v);
                        if (SWIGLU) {
                            wv2[u] = rs::load16(wr2 + 8 * v);
                        }
                    }
                }
#pragma unroll
                for (int u = 0; u < UNROLL; u++) {
                    const int v = v0 + u * rs::WARP;
                    if (v < kv) {
#pragma unroll
                        for (int t = 0; t < T; t++) {
                            const rs::vec16 xv = rs::load16_rw(xs + t * kc + 8 * v);
                            acc[t] += rs::dot8(wv[u], xv);
                            if (SWIGLU) {
                                acc2[t] += rs::dot8(wv2[u], xv);
                            }
                        }
                    }
                }
            }
        } else {
            for (int c = lane; c < kc; c += rs::WARP) {
                const float wf = rs::bf16_to_f32(wr[c]);
                const float wf2 = SWIGLU ? rs::bf16_to_f32(wr2[c]) : 0.f;
#pragma unroll
                for (int t = 0; t < T; t++) {
                    const float xf = rs::bf16_to_f32(xs[t * kc + c]);
                    acc[t] = fmaf(wf, xf, acc[t]);
                    if (SWIGLU) {
                        acc2[t] = fmaf(wf2, xf, acc2[t]);
                    }
                }
            }
        }
    }

    if (row >= n) {
        return; // after the last barrier; the whole warp leaves together
    }
#pragma unroll
    for (int t = 0; t < T; t++) {
        const float s = rs::warp_sum(acc[t]);
        if (SWIGLU) {
            const float up = rs::warp_sum(acc2[t]);
            if (lane == 0) {
                const float g = s / (1.0f + expf(-s)); // as silu_mul.cu
                h[(size_t) t * n + row] = rs::f32_to_bf16(g * up);
            }
        } else if (lane == 0) {
            float *dst = y + (size_t) t * n + row;
            *dst = accumulate ? *dst + s : s;
        }
    }
}

} // namespace

#define RS_GEMV(T)                                                                                                    \
    extern "C" __global__ void __launch_bounds__(THREADS)                                                             \
    gemv_bf16_##T(float *__restrict__ y, const rs::bf16_t *__restrict__ x, const rs::bf16_t *__restrict__ w, int n, \
                  int k, int accumulate) {                                                                            \
        gemv_rows<T, false>(y, nullptr, x, w, n, k, accumulate);                                                      \
    }                                                                                                                 \
    extern "C" __global__ void __launch_bounds__(THREADS)                                                             \
    gemv_swiglu_bf16_##T(rs::bf16_t *__restrict__ h, const rs::bf16_t *__restrict__ x, const rs::bf16_t *__restrict__ w, \
                         int inter, int k) {                                                                          \
        gemv_rows<T, true>(nullptr, h, x, w, inter, k, 0);                                                            \
    }

RS_GEMV(1)
RS_GEMV(2)
RS_GEMV(3)
RS_GEMV(4)
RS_GEMV(5)
RS_GEMV(6)
RS_GEMV(7)
RS_GEMV(8)
