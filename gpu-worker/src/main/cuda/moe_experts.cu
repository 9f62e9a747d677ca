// moe_experts.cu — the SwiGLU experts of a MoE layer for decode and small batches, as three kernels that
// read the expert ids from device memory (router_top_k's output; never through the host):
//   moe_gate_up_silu  h[t,k,:] = silu(W_gate[e]·x[t]) ⊙ (W_up[e]·x[t])     e = topk_ids[t,k]
//   moe_down          y[t,k,:] = W_down[e]·h[t,k,:]
//   moe_combine       out[t,:] = residual[t,:] + (shared[t,:] + Σ_k w[t,k]·y[t,k,:])   (k in order)
// Mirrors ReferenceForward.sparseMoe() / mlp() (ReferenceOps.siluMul: silu(g)·u = (g / (1 + e^−g))·u).
// No atomics: every output element is one thread's (or one warp's fixed-order) sum, so results are
// deterministic and independent of the batch.
//
// The shared expert (and a dense SwiGLU layer) runs through the same two kernels with topk_ids = null
// (every (t, k) uses expert 0), K = 1, E = 1 and its own packed weights; moe_combine then takes its y as
// `shared`. Layer 0's dense MLP likewise (I = intermediate_size).
//
// Legend: T = tokens, K = experts per token, E = experts, D = hidden, I = expert intermediate.
//
// Packed weight layout the CUDA weight loader must produce (bf16, row-major like nn.Linear):
//   gate_up [E, 2·I, D]: for expert e, rows 0..I−1 = experts.e.gate_proj.weight (I, D),
//                        rows I..2I−1 = experts.e.up_proj.weight (I, D)
//   down    [E, D, I]:   experts.e.down_proj.weight (D, I)
//   (shared expert: E = 1, gate_up [1, 2·Is, D] = concat(shared_experts.gate_proj, shared_experts.up_proj), down [1, D, Is])
//
// Launch contract, moe_gate_up_silu:
//   grid  (ceil(I / 8), T·K, 1), block (256, 1, 1), dynamic shared memory 0
//   one warp per intermediate row i = blockIdx.x·8 + warp, for the (t, k) = (blockIdx.y / K, blockIdx.y % K)
//   x        const float* [T, D]      MoE input (post-attention-normed hidden), fp32
//   gate_up  const bf16*  [E, 2·I, D] packed as above
//   topk_ids const int*   [T, K]      expert of each (t, k); null: expert 0. An id outside [0, E) gives h = 0
//   h        float*       [T, K, I]   fp32 activations
//   tokens, top_k, hidden, inter, experts   ints (D = hidden, I = inter)
//
// Launch contract, moe_down:
//   grid  (ceil(D / 8), T·K, 1), block (256, 1, 1), dynamic shared memory 0
//   one warp per output row j = blockIdx.x·8 + warp
//   h        const float* [T, K, I]   from moe_gate_up_silu
//   down     const bf16*  [E, D, I]
//   topk_ids const int*   [T, K]      as above (null: expert 0); an id outside [0, E) gives y = 0
//   y        float*       [T, K, D]   fp32 expert outputs per (t, k)
//   tokens, top_k, hidden, inter, experts   ints
//
// Launch contract, moe_combine:
//   grid  (ceil(D / 256), T, 1), block (256, 1, 1), dynamic shared memory 0
//   y            const float* [T, K, D]   routed expert outputs
//   topk_weights const float* [T, K]      combine weights (router_top_k)
//   shared       const float* [T, D]      shared expert output (its moe_down y with K = 1); null: none
//   residual     const float* [T, D]      added first; null: none (may alias out)
//   out          float*       [T, D]      residual + (shared + Σ_k w·y)
//   tokens, top_k, hidden   ints
#include "common.cuh"

namespace {

constexpr int THREADS = 256;
constexpr int WARPS = THREADS / rs::WARP;

/** Σ_c w[c]·x[c] over n elements by one warp, lanes striding, fp32. */
__device__ __forceinline__ float warp_dot(const rs::bf16_t *__restrict__ w, const float *__restrict__ x, int n, int lane) {
    float acc = 0.f;
    for (int c = lane; c < n; c += rs::WARP) {
        acc += rs::bf16_to_f32(w[c]) * x[c];
    }
    return rs::warp_sum(acc);
}

/** The expert of slot (t, k): topk_ids[t·K + k], or 0 without ids; −1 when out of range. */
__device__ __forceinline__ int expert_of(const int *__restrict__ topk_ids, int tk, int experts) {
    const int e = topk_ids == nullptr ? 0 : topk_ids[tk];
    return e >= 0 && e < experts ? e : -1;
}

} // namespace

extern "C" __global__ void __launch_bounds__(THREADS)
moe_gate_up_silu(const float *__restrict__ x, const rs::bf16_t *__restrict__ gate_up, const int *__restrict__ topk_ids,
                 float *__restrict__ h, int tokens, int top_k, int hidden, int inter, int experts) {
    const int lane = threadIdx.x % rs::WARP;
    const int i = blockIdx.x * WARPS + threadIdx.x / rs::WARP; // intermediate row
    const int tk = blockIdx.y;                                  // t·K + k
    if (i >= inter || tk >= tokens * top_k) {
        return; // warp-uniform
    }
    const int t = tk / top_k;
    const int e = expert_of(topk_ids, tk, experts);
    float out = 0.f;
    if (e >= 0) {
        const rs::bf16_t *w = gate_up + (long long) e * 2 * inter * hidden; // (2I, D)
        const float *xt = x + (long long) t * hidden;                       // (D)
        const float g = warp_dot(w + (long long) i * hidden, xt, hidden, lane);
        const float u = warp_dot(w + (long long) (inter + i) * hidden, xt, hidden, lane);
        out = (g / (1.f + expf(-g))) * u;
    }
    if (lane == 0) {
        h[(long long) tk * inter + i] = out;
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
moe_down(const float *__restrict__ h, const rs::bf16_t *__restrict__ down, const int *__restrict__ topk_ids,
         float *__restrict__ y, int tokens, int top_k, int hidden, int inter, int experts) {
    const int lane = threadIdx.x % rs::WARP;
    const int j = blockIdx.x * WARPS + threadIdx.x / rs::WARP; // output row
    const int tk = blockIdx.y;
    if (j >= hidden || tk >= tokens * top_k) {
        return;
    }
    const int e = expert_of(topk_ids, tk, experts);
    float out = 0.f;
    if (e >= 0) {
        const rs::bf16_t *w = down + ((long long) e * hidden + j) * inter; // (I) row j of expert e
        out = warp_dot(w, h + (long long) tk * inter, inter, lane);
    }
    if (lane == 0) {
        y[(long long) tk * hidden + j] = out;
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
moe_combine(const float *__restrict__ y, const float *__restrict__ topk_weights, const float *shared, const float *residual,
            float *out, int tokens, int top_k, int hidden) {
    const int j = blockIdx.x * THREADS + threadIdx.x;
    const int t = blockIdx.y;
    if (j >= hidden || t >= tokens) {
        return;
    }
    float routed = 0.f;
    for (int k = 0; k < top_k; k++) {
        routed += topk_weights[(long long) t * top_k + k] * y[((long long) t * top_k + k) * hidden + j];
    }
    const long long o = (long long) t * hidden + j;
    const float mlp = shared != nullptr ? shared[o] + routed : routed;
    out[o] = residual != nullptr ? residual[o] + mlp : mlp;
}
