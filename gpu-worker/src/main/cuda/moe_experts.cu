// moe_experts.cu — the routed SwiGLU experts of a MoE layer, grouped by expert so that each selected
// expert's weights are read once per step however many tokens chose it (decode at batch 64 selects
// ~221 distinct experts of 256 for 512 (token, k) slots: 2.3× fewer weight bytes than one pass per slot).
// The kernels, the expert ids never leave the device (router_top_k writes them, and the plan too):
//   moe_group         the step's group plan: active experts, and the slots t·K+k of each, from topk_ids
//                     (moe_plan.cuh; in a decode or prefill step router_top_k's last block builds it instead)
//   moe_gate_up_silu  h[t,k,:] = bf16(silu(W_gate[e]·x[t]) ⊙ (W_up[e]·x[t]))     e = topk_ids[t,k]
//   moe_down          y[t,k,:] = W_down[e]·h[t,k,:]
//   moe_combine       out[t,:] = residual[t,:] + (shared[t,:] + Σ_k w[t,k]·y[t,k,:])   (k in order)
//   moe_combine_norm  moe_combine, then the next layer's input RMSNorm of out (rmsnorm.cuh)
// Mirrors ReferenceForward.sparseMoe() (ReferenceOps.siluMul: silu(g)·u = (g / (1 + e^−g))·u). h holds values
// rounded to bf16 (stored as fp32): the down projection's input is bf16, as in the dense MLP (silu_mul.cu) and in the
// bf16 model; and the CUDA-core and tensor-core paths then differ only in the order of their fp32 sums, so the
// batch size that picks the path changes a result by summation order, not by a rounding one path makes.
//
// Determinism: every output element h[s,i] / y[s,j] is one warp's fixed-order sum over the row (lanes
// stride 8-element vectors, then warp_sum), whichever other slots share its group or its pass, so the
// values do not depend on the batch, on the order of slots inside a group, or on the grid. moe_group
// places the slots of a group with shared-memory atomics: their order inside a group may differ from
// run to run; nothing computed depends on it. No atomics touch an output.
//
// Memory traffic: one warp per weight row streams the row with 16-byte loads (8 bf16 per lane, several
// in flight) and serves up to SLOTS = 8 slots of its group per pass, their inputs staged in shared
// memory; a group with more slots (prefill) passes over the row again (an L2 hit). Blocks of groups
// that do not exist this step (grid.y covers the most groups a step can have) return at once.
//
// Legend: T = tokens, K = experts per token, E = experts, D = hidden, I = expert intermediate,
// TK = T·K slots, A = active experts this step (A ≤ min(E, TK)).
//
// Packed weight layout the CUDA weight loader produces (bf16, row-major like nn.Linear):
//   gate_up [E, 2·I, D]: for expert e, rows 0..I−1 = experts.e.gate_proj.weight (I, D),
//                        rows I..2I−1 = experts.e.up_proj.weight (I, D)
//   down    [E, D, I]:   experts.e.down_proj.weight (D, I)
//
// Group plan, int32 words [3 + 3·E + TK], written by moe_group:
//   plan[0]                  A
//   plan[1 + a]              expert id of group a, ascending in a (a < A)
//   plan[1 + E + a]          first index into slots of group a; plan[1 + E + A] = number of grouped slots
//   plan[2 + 2·E + a]        64-slot tiles before group a (the tensor-core path's block rows); plan[2 + 2·E + A] = all tiles
//   plan[3 + 3·E + p]        slots (p < grouped slots): slot indices t·K + k, grouped by expert
// A slot whose id is outside [0, E) belongs to no group (moe_combine then skips it).
//
// Launch contract, moe_group:
//   grid (1, 1, 1), block (256, 1, 1), dynamic shared memory 0; E ≤ MAX_EXPERTS (2048)
//   topk_ids const int* [T, K];  plan int* [3 + 3·E + TK];  tokens, top_k, experts ints
//
// Launch contract, moe_gate_up_silu:
//   grid  (ceil(I / 8), min(E, TK), 1), block (256, 1, 1): block (bx, a) computes rows bx·8 .. bx·8+7 of group a
//   dynamic shared memory: SLOTS · min(D, X_CHUNK) · 2 bytes (32 KiB for D ≥ 2048)
//   x        const bf16*  [T, D]      MoE input (post-attention-normed hidden)
//   gate_up  const bf16*  [E, 2·I, D] packed as above
//   plan     const int*   [3 + 3·E + TK]
//   h        float*       [TK, I]     activations of the grouped slots, rounded to bf16 (others untouched)
//   tokens, top_k, hidden, inter, experts   ints (D = hidden, I = inter)
//   vector path when D % 8 == 0 and x, gate_up are 16-byte aligned; else scalar loads (any D)
//
// Launch contract, moe_down:
//   grid  (ceil(D / 32), min(E, TK), 1), block (256, 1, 1): four output rows per warp, 8 lanes each
//   dynamic shared memory: SLOTS · min(I, H_CHUNK) · 4 bytes (32 KiB for I ≥ 1024)
//   h        const float* [TK, I]     from moe_gate_up_silu
//   down     const bf16*  [E, D, I]
//   plan     const int*   [3 + 3·E + TK]
//   y        float*       [TK, D]     fp32 expert outputs of the grouped slots (others untouched)
//   tokens, top_k, hidden, inter, experts   ints
//   vector path when I % 8 == 0 and h, down are 16-byte aligned
//
// Tensor-core path for steps whose groups are large (prefill; the caller picks it: MoeExperts.tensorCores):
// the same two products as tiled GEMMs over each group, mma.sync m16n8k16 (mma.cuh) with bf16 inputs and fp32
// accumulators, 64 slots × 64 outputs per block marching over K in steps of 32 (as matmul.cu). The slots'
// inputs are gathered into the shared-memory tile through the plan (zeros past the group), outputs scattered
// back by slot. moe_gate_up_silu_mma's 64 output columns are 32 gate rows and the 32 matching up rows, paired
// through shared memory for silu(g)·u (rounded to bf16, as moe_gate_up_silu's); moe_down_mma stages h as bf16,
// which loses nothing.
//
// Launch contract, moe_gate_up_silu_mma:
//   grid (ceil(I / 32), min(E, TK) + ceil(TK / 64), 1): block (bx, j) computes intermediate indices
//   bx·32 .. bx·32+31 of the j-th 64-slot tile (plan tile starts; blocks past the last tile return)
//   block (128, 1, 1), dynamic shared memory 0 (static 27 KiB); arguments as moe_gate_up_silu
// Launch contract, moe_down_mma:
//   grid (ceil(D / 64), min(E, TK) + ceil(TK / 64), 1), block (128, 1, 1), dynamic shared memory 0 (static
//   10.5 KiB); arguments as moe_down
//
// Launch contract, moe_combine:
//   grid  (ceil(D / 256), T, 1), block (256, 1, 1), dynamic shared memory 0
//   y            const float* [TK, D]  routed expert outputs
//   topk_weights const float* [T, K]   combine weights (router_top_k)
//   topk_ids     const int*   [T, K]   a slot whose id is outside [0, E) adds nothing
//   shared       const float* [T, D]   shared expert output; null: none
//   residual     const float* [T, D]   added first; null: none (may alias out)
//   out          float*       [T, D]   residual + (shared + Σ_k w·y)
//   tokens, top_k, hidden, experts   ints
//
// Launch contract, moe_combine_norm (moe_combine, then the next layer's input RMSNorm of the rows it wrote,
// rmsnorm.cuh: the bits of the rmsnorm kernel, one launch fewer per layer):
//   grid  (1, T, 1), block (256, 1, 1), dynamic shared memory 0; moe_combine's arguments, and
//   norm_out     bf16*        [T, D]   the normed rows
//   norm_weight  const bf16*  [D]      the next layer's input_layernorm.weight
//   eps          float        rms_norm_eps
#include "mma.cuh"
#include "moe_plan.cuh"
#include "rmsnorm.cuh"
#include "vec.cuh"

namespace {

constexpr int THREADS = 256;
constexpr int WARPS = THREADS / rs::WARP;
constexpr int SLOTS = 8;       // slots of a group served by one pass over a weight row
constexpr int X_CHUNK = 2048;  // columns of x staged per pass (bf16): 8 · 2048 · 2 B = 32 KiB
constexpr int H_CHUNK = 1024;  // columns of h staged per pass (fp32): 8 · 1024 · 4 B = 32 KiB
constexpr int TILE_M = rs_moe::TILE_M; // slots per block row of the tensor-core path
constexpr int UNROLL_GU = 4;   // 16-byte loads in flight per lane and row in moe_gate_up_silu (two rows: 8)
constexpr int DOWN_ROWS = 4;    // output rows per warp in moe_down
constexpr int DOWN_LANES = rs::WARP / DOWN_ROWS; // lanes per row (8)
constexpr int UNROLL_DOWN = 8; // 16-byte loads in flight per lane in moe_down (I = 512: the whole row at once)

/** The group of block column blockIdx.y: its expert, and its slots [begin, end) in the plan's slot list. */
struct Group {
    int expert;
    int begin;
    int end;
};

__device__ __forceinline__ bool group_of(const int *__restrict__ plan, int experts, Group &g) {
    const int a = blockIdx.y;
    if (a >= plan[0]) {
        return false;
    }
    g.expert = plan[1 + a];
    g.begin = plan[1 + experts + a];
    g.end = plan[2 + experts + a];
    return true;
}

__device__ __forceinline__ float silu_mul(float g, float u) {
    return (g / (1.f + expf(-g))) * u;
}

/** Σ over 8 lanes' worth: w (8 bf16) · x (8 fp32 at p, 16-byte aligned, shared memory). */
__device__ __forceinline__ float dot8_f32(rs::vec16 w, const float *p) {
    const rs::vec16 a = rs::load16_rw(p);
    const rs::vec16 b = rs::load16_rw(p + 4);
    float s = rs::bf16_lo(w.x) * __uint_as_float(a.x);
    s = fmaf(rs::bf16_hi(w.x), __uint_as_float(a.y), s);
    s = fmaf(rs::bf16_lo(w.y), __uint_as_float(a.z), s);
    s = fmaf(rs::bf16_hi(w.y), __uint_as_float(a.w), s);
    s = fmaf(rs::bf16_lo(w.z), __uint_as_float(b.x), s);
    s = fmaf(rs::bf16_hi(w.z), __uint_as_float(b.y), s);
    s = fmaf(rs::bf16_lo(w.w), __uint_as_float(b.z), s);
    s = fmaf(rs::bf16_hi(w.w), __uint_as_float(b.w), s);
    return s;
}


// ---- tensor-core path (groups larger than a pass: prefill) -----------------------------------

constexpr int MMA_THREADS = 128; // 4 warps as 2 × 2, 32 × 32 each (mma.cuh warp_tile_32x32)
constexpr int TILE_N = 64;       // outputs per block tile
constexpr int TILE_K = 32;       // K per step
constexpr int LDS = TILE_K + 8;  // shared row stride in bf16 (conflict-free fragment reads, as matmul.cu)

/** The 64-slot tile of block row blockIdx.y: its expert, first slot-list index and rows. */
struct Tile {
    int expert;
    int first;
    int rows;
};

__device__ __forceinline__ bool tile_of(const int *__restrict__ plan, int experts, Tile &t) {
    const int groups = plan[0];
    const int *tile_start = plan + 2 + 2 * experts; // [A + 1]
    const int j = blockIdx.y;
    if (j >= tile_start[groups]) {
        return false;
    }
    int lo = 0; // the last group a with tile_start[a] <= j
    int hi = groups - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (tile_start[mid] <= j) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    const int begin = plan[1 + experts + lo];
    const int end = plan[2 + experts + lo];
    t.expert = plan[1 + lo];
    t.first = begin + (j - tile_start[lo]) * TILE_M;
    t.rows = min(TILE_M, end - t.first);
    return true;
}

/**
 * Stages columns [k0, k0 + 32) of 64 rows of a bf16 matrix with `cols` columns into tile[64][LDS]:
 * row r is row_of[r] of `m` (shared memory), zeros where row_of[r] < 0 or past the last column.
 */
__device__ __forceinline__ void stage_bf16(rs::bf16_t (*tile)[LDS], const rs::bf16_t *__restrict__ m, const int *row_of, int cols, int k0,
                                           bool vec) {
    if (vec) { // cols % 8 == 0: a vector is wholly inside or outside
        for (int c = threadIdx.x; c < TILE_M * TILE_K / 8; c += MMA_THREADS) {
            const int r = c / (TILE_K / 8);
            const int col = (c % (TILE_K / 8)) * 8;
            rs::vec16 v = {0u, 0u, 0u, 0u};
            if (row_of[r] >= 0 && k0 + col < cols) {
                v = rs::load16(m + (size_t) row_of[r] * cols + k0 + col);
            }
            rs::store16(&tile[r][col], v);
        }
    } else {
        for (int c = threadIdx.x; c < TILE_M * TILE_K; c += MMA_THREADS) {
            const int r = c / TILE_K;
            const int col = c % TILE_K;
            tile[r][col] = row_of[r] >= 0 && k0 + col < cols ? m[(size_t) row_of[r] * cols + k0 + col] : (rs::bf16_t) 0;
        }
    }
}

/** As stage_bf16 for an fp32 matrix, each value rounded to bf16 (nearest even) on the way in. */
__device__ __forceinline__ void stage_f32(rs::bf16_t (*tile)[LDS], const float *m, const int *row_of, int cols, int k0) {
    for (int c = threadIdx.x; c < TILE_M * TILE_K; c += MMA_THREADS) {
        const int r = c / TILE_K;
        const int col = c % TILE_K;
        tile[r][col] = row_of[r] >= 0 && k0 + col < cols ? rs::f32_to_bf16(m[(size_t) row_of[r] * cols + k0 + col]) : (rs::bf16_t) 0;
    }
}

} // namespace

extern "C" __global__ void __launch_bounds__(rs_moe::PLAN_THREADS)
moe_group(const int *__restrict__ topk_ids, int *__restrict__ plan, int tokens, int top_k, int experts) {
    rs_moe::build_plan(topk_ids, plan, tokens, top_k, experts);
}

template <int S>
__device__ __forceinline__ void gate_up_body(const Group &g, const rs::bf16_t *__restrict__ x, const rs::bf16_t *__restrict__ gate_up,
                                             const int *__restrict__ plan, float *__restrict__ h, int top_k, int hidden, int inter, int experts) {
    rs::bf16_t *xs = rs::dynamic_smem<rs::bf16_t>(); // (S, dc) inputs of this pass's slots, this chunk
    const int *slots = plan + 3 + 3 * experts;
    const int warp = threadIdx.x / rs::WARP;
    const int lane = threadIdx.x % rs::WARP;
    const int i = blockIdx.x * WARPS + warp; // intermediate row, warp-uniform
    const bool vec = (hidden & 7) == 0 && rs::aligned16(x) && rs::aligned16(gate_up);
    const rs::bf16_t *wg = gate_up + ((size_t) g.expert * 2 * inter + i) * hidden; // (D) gate row i
    const rs::bf16_t *wu = wg + (size_t) inter * hidden;                          // (D) up row i

    for (int p = g.begin; p < g.end; p += S) {
        const int n = min(S, g.end - p);
        float ag[S];
        float au[S];
#pragma unroll
        for (int s = 0; s < S; s++) {
            ag[s] = 0.f;
            au[s] = 0.f;
        }
        for (int d0 = 0; d0 < hidden; d0 += X_CHUNK) {
            const int dc = min(X_CHUNK, hidden - d0);
            // the chunk's first weight vectors are requested before x is staged: the two latencies overlap
            rs::vec16 vg[UNROLL_GU];
            rs::vec16 vu[UNROLL_GU];
            if (vec && i < inter) {
#pragma unroll
                for (int u = 0; u < UNROLL_GU; u++) {
                    const int v = lane + u * rs::WARP;
                    if (v < dc / 8) {
                        vg[u] = rs::load16(wg + d0 + 8 * v);
                        vu[u] = rs::load16(wu + d0 + 8 * v);
                    }
                }
            }
            __syncthreads(); // every warp is done with the previous chunk
            for (int s = 0; s < n; s++) {
                const rs::bf16_t *xt = x + (size_t) (slots[p + s] / top_k) * hidden + d0; // (dc) token of slot s
                if (vec) {
                    for (int v = threadIdx.x; v < dc / 8; v += THREADS) {
                        rs::store16(xs + s * dc + 8 * v, rs::load16(xt + 8 * v));
                    }
                } else {
                    for (int c = threadIdx.x; c < dc; c += THREADS) {
                        xs[s * dc + c] = xt[c];
                    }
                }
            }
            __syncthreads();
            if (i >= inter) {
                continue; // still reaches the next barrier
            }
            if (vec) {
                const int dv = dc / 8;
                for (int v0 = lane; v0 < dv; v0 += rs::WARP * UNROLL_GU) {
#pragma unroll
                    for (int u = 0; u < UNROLL_GU; u++) {
                        const int v = v0 + u * rs::WARP;
                        if (v < dv && v0 != lane) { // the first vectors came before the barrier
                            vg[u] = rs::load16(wg + d0 + 8 * v);
                            vu[u] = rs::load16(wu + d0 + 8 * v);
                        }
                    }
#pragma unroll
                    for (int u = 0; u < UNROLL_GU; u++) {
                        const int v = v0 + u * rs::WARP;
                        if (v < dv) {
#pragma unroll
                            for (int s = 0; s < S; s++) {
                                if (s < n) {
                                    const rs::vec16 xv = rs::load16_rw(xs + s * dc + 8 * v);
                                    ag[s] += rs::dot8(vg[u], xv);
                                    au[s] += rs::dot8(vu[u], xv);
                                }
                            }
                        }
                    }
                }
            } else {
                for (int c = lane; c < dc; c += rs::WARP) {
                    const float fg = rs::bf16_to_f32(wg[d0 + c]);
                    const float fu = rs::bf16_to_f32(wu[d0 + c]);
#pragma unroll
                    for (int s = 0; s < S; s++) {
                        if (s < n) {
                            const float xv = rs::bf16_to_f32(xs[s * dc + c]);
                            ag[s] = fmaf(fg, xv, ag[s]);
                            au[s] = fmaf(fu, xv, au[s]);
                        }
                    }
                }
            }
        }
        if (i < inter) {
#pragma unroll
            for (int s = 0; s < S; s++) {
                if (s < n) {
                    const float gs = rs::warp_sum(ag[s]);
                    const float us = rs::warp_sum(au[s]);
                    if (lane == 0) {
                        h[(size_t) slots[p + s] * inter + i] = rs::round_bf16(silu_mul(gs, us));
                    }
                }
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
moe_gate_up_silu(const rs::bf16_t *__restrict__ x, const rs::bf16_t *__restrict__ gate_up, const int *__restrict__ plan,
                 float *__restrict__ h, int tokens, int top_k, int hidden, int inter, int experts) {
    Group g;
    if (!group_of(plan, experts, g)) {
        return; // block-uniform, before any barrier
    }
    // a group of one slot (every group at batch 1) runs a body unrolled for one slot: a fraction of the code, so
    // the step's many short launches stay inside the instruction cache; the result is bit for bit the same
    if (g.end - g.begin == 1) {
        gate_up_body<1>(g, x, gate_up, plan, h, top_k, hidden, inter, experts);
    } else {
        gate_up_body<SLOTS>(g, x, gate_up, plan, h, top_k, hidden, inter, experts);
    }
}

template <int S>
__device__ __forceinline__ void down_body(const Group &g, const float *__restrict__ h, const rs::bf16_t *__restrict__ down,
                                          const int *__restrict__ plan, float *__restrict__ y, int hidden, int inter, int experts) {
    float *hs = rs::dynamic_smem<float>(); // (S, ic) activations of this pass's slots, this chunk
    const int *slots = plan + 3 + 3 * experts;
    const int warp = threadIdx.x / rs::WARP;
    const int lane = threadIdx.x % rs::WARP;
    const int sub = lane % DOWN_LANES; // this lane's place among the DOWN_LANES lanes of its row
    // output row, uniform over the row's lanes: DOWN_ROWS rows per warp, so a warp has DOWN_ROWS · DOWN_LANES ·
    // UNROLL_DOWN 16-byte loads in flight at once
    const int j = (blockIdx.x * WARPS + warp) * DOWN_ROWS + lane / DOWN_LANES;
    const bool vec = (inter & 7) == 0 && rs::aligned16(h) && rs::aligned16(down);
    const rs::bf16_t *w = down + ((size_t) g.expert * hidden + j) * inter; // (I) row j of the expert

    for (int p = g.begin; p < g.end; p += S) {
        const int n = min(S, g.end - p);
        float acc[S];
#pragma unroll
        for (int s = 0; s < S; s++) {
            acc[s] = 0.f;
        }
        for (int i0 = 0; i0 < inter; i0 += H_CHUNK) {
            const int ic = min(H_CHUNK, inter - i0);
            // the chunk's first weight vectors are requested before h is staged: the two latencies overlap
            rs::vec16 wv[UNROLL_DOWN];
            if (vec && j < hidden) {
#pragma unroll
                for (int u = 0; u < UNROLL_DOWN; u++) {
                    const int v = sub + u * DOWN_LANES;
                    if (v < ic / 8) {
                        wv[u] = rs::load16(w + i0 + 8 * v);
                    }
                }
            }
            __syncthreads();
            for (int s = 0; s < n; s++) {
                const float *hr = h + (size_t) slots[p + s] * inter + i0; // (ic) activations of slot s
                if (vec) {
                    for (int v = threadIdx.x; v < ic / 4; v += THREADS) {
                        rs::store16(hs + s * ic + 4 * v, rs::load16_rw(hr + 4 * v)); // h was written by the previous kernel
                    }
                } else {
                    for (int c = threadIdx.x; c < ic; c += THREADS) {
                        hs[s * ic + c] = hr[c];
                    }
                }
            }
            __syncthreads();
            if (j >= hidden) {
                continue;
            }
            if (vec) {
                const int iv = ic / 8;
                for (int v0 = sub; v0 < iv; v0 += DOWN_LANES * UNROLL_DOWN) {
#pragma unroll
                    for (int u = 0; u < UNROLL_DOWN; u++) {
                        const int v = v0 + u * DOWN_LANES;
                        if (v < iv && v0 != sub) { // the first vectors came before the barrier
                            wv[u] = rs::load16(w + i0 + 8 * v);
                        }
                    }
#pragma unroll
                    for (int u = 0; u < UNROLL_DOWN; u++) {
                        const int v = v0 + u * DOWN_LANES;
                        if (v < iv) {
#pragma unroll
                            for (int s = 0; s < S; s++) {
                                if (s < n) {
                                    acc[s] += dot8_f32(wv[u], hs + s * ic + 8 * v);
                                }
                            }
                        }
                    }
                }
            } else {
                for (int c = sub; c < ic; c += DOWN_LANES) {
                    const float wf = rs::bf16_to_f32(w[i0 + c]);
#pragma unroll
                    for (int s = 0; s < S; s++) {
                        if (s < n) {
                            acc[s] = fmaf(wf, hs[s * ic + c], acc[s]);
                        }
                    }
                }
            }
        }
        // every lane reduces (its row's lanes are an aligned group of DOWN_LANES, so the xor stays in the row)
#pragma unroll
        for (int s = 0; s < S; s++) {
            if (s < n) {
                float r = acc[s];
#pragma unroll
                for (int m = DOWN_LANES / 2; m > 0; m >>= 1) {
                    r += __shfl_xor_sync(rs::FULL_MASK, r, m);
                }
                if (sub == 0 && j < hidden) {
                    y[(size_t) slots[p + s] * hidden + j] = r;
                }
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(THREADS, 3) // at most 85 registers: three blocks per SM
moe_down(const float *__restrict__ h, const rs::bf16_t *__restrict__ down, const int *__restrict__ plan,
         float *__restrict__ y, int tokens, int top_k, int hidden, int inter, int experts) {
    Group g;
    if (!group_of(plan, experts, g)) {
        return;
    }
    // a group of one slot (every group at batch 1) runs a body unrolled for one slot: a fraction of the code, so
    // the step's many short launches stay inside the instruction cache; the result is bit for bit the same
    if (g.end - g.begin == 1) {
        down_body<1>(g, h, down, plan, y, hidden, inter, experts);
    } else {
        down_body<SLOTS>(g, h, down, plan, y, hidden, inter, experts);
    }
}

extern "C" __global__ void __launch_bounds__(MMA_THREADS)
moe_gate_up_silu_mma(const rs::bf16_t *__restrict__ x, const rs::bf16_t *__restrict__ gate_up, const int *__restrict__ plan,
                     float *__restrict__ h, int tokens, int top_k, int hidden, int inter, int experts) {
    __align__(16) __shared__ rs::bf16_t xs[TILE_M][LDS]; // (64 slots' tokens, 32 k)
    __align__(16) __shared__ rs::bf16_t ws[TILE_N][LDS]; // (32 gate rows then the 32 matching up rows, 32 k)
    __shared__ float cs[TILE_M][TILE_N + 1];             // the accumulated tile, for the gate·up pairing
    __shared__ int x_row[TILE_M];                        // token of each tile row, −1 past the group
    __shared__ int w_row[TILE_N];                        // row of the expert's (2I, D) weight, −1 past I
    __shared__ int slot_row[TILE_M];                     // slot of each tile row
    Tile t;
    if (!tile_of(plan, experts, t)) {
        return; // block-uniform, before any barrier
    }
    const int *slots = plan + 3 + 3 * experts;
    const int i0 = blockIdx.x * (TILE_N / 2); // first intermediate index of this block
    if (threadIdx.x < TILE_M) {
        const int r = threadIdx.x;
        const int s = r < t.rows ? slots[t.first + r] : -1;
        slot_row[r] = s;
        x_row[r] = s >= 0 ? s / top_k : -1;
        const int i = i0 + r % (TILE_N / 2);
        w_row[r] = i < inter ? (r < TILE_N / 2 ? i : inter + i) : -1;
    }
    __syncthreads();
    const rs::bf16_t *we = gate_up + (size_t) t.expert * 2 * inter * hidden; // (2I, D)
    const bool vec = (hidden & 7) == 0 && rs::aligned16(x) && rs::aligned16(gate_up);
    const int warp = threadIdx.x / rs::WARP;
    const int wm = (warp / 2) * 32;
    const int wn = (warp % 2) * 32; // warps 0, 2: gate columns; 1, 3: up columns
    float acc[2][4][4];
    rs::zero_tile(acc);
    for (int k0 = 0; k0 < hidden; k0 += TILE_K) {
        stage_bf16(xs, x, x_row, hidden, k0, vec);
        stage_bf16(ws, we, w_row, hidden, k0, vec);
        __syncthreads();
        rs::warp_tile_step<LDS, TILE_K>(acc, xs, ws, wm, wn);
        __syncthreads();
    }
    rs::for_each_fragment(acc, wm, wn, [&](int r, int c, float v) { cs[r][c] = v; });
    __syncthreads();
    for (int c = threadIdx.x; c < TILE_M * (TILE_N / 2); c += MMA_THREADS) {
        const int r = c / (TILE_N / 2);
        const int col = c % (TILE_N / 2);
        if (slot_row[r] >= 0 && i0 + col < inter) {
            h[(size_t) slot_row[r] * inter + i0 + col] = rs::round_bf16(silu_mul(cs[r][col], cs[r][TILE_N / 2 + col]));
        }
    }
}

extern "C" __global__ void __launch_bounds__(MMA_THREADS)
moe_down_mma(const float *__restrict__ h, const rs::bf16_t *__restrict__ down, const int *__restrict__ plan, float *__restrict__ y,
             int tokens, int top_k, int hidden, int inter, int experts) {
    __align__(16) __shared__ rs::bf16_t hs[TILE_M][LDS]; // (64 slots' activations as bf16, 32 k)
    __align__(16) __shared__ rs::bf16_t ws[TILE_N][LDS]; // (64 output rows, 32 k)
    __shared__ int h_row[TILE_M];                        // slot of each tile row, −1 past the group
    __shared__ int w_row[TILE_N];                        // output row, −1 past D
    Tile t;
    if (!tile_of(plan, experts, t)) {
        return;
    }
    const int *slots = plan + 3 + 3 * experts;
    const int n0 = blockIdx.x * TILE_N;
    if (threadIdx.x < TILE_M) {
        const int r = threadIdx.x;
        h_row[r] = r < t.rows ? slots[t.first + r] : -1;
        w_row[r] = n0 + r < hidden ? n0 + r : -1;
    }
    __syncthreads();
    const rs::bf16_t *we = down + (size_t) t.expert * hidden * inter; // (D, I)
    const bool vec = (inter & 7) == 0 && rs::aligned16(down);
    const int warp = threadIdx.x / rs::WARP;
    const int wm = (warp / 2) * 32;
    const int wn = (warp % 2) * 32;
    float acc[2][4][4];
    rs::zero_tile(acc);
    for (int k0 = 0; k0 < inter; k0 += TILE_K) {
        stage_f32(hs, h, h_row, inter, k0);
        stage_bf16(ws, we, w_row, inter, k0, vec);
        __syncthreads();
        rs::warp_tile_step<LDS, TILE_K>(acc, hs, ws, wm, wn);
        __syncthreads();
    }
    rs::for_each_fragment(acc, wm, wn, [&](int r, int c, float v) {
        if (h_row[r] >= 0 && n0 + c < hidden) {
            y[(size_t) h_row[r] * hidden + n0 + c] = v;
        }
    });
}

namespace {

/** Element j of token t's output: residual + (shared + Σ_k w·y), k in order. */
__device__ __forceinline__ float combined(const float *__restrict__ y, const float *__restrict__ topk_weights, const int *__restrict__ topk_ids,
                                          const float *shared, const float *residual, int t, int j, int top_k, int hidden, int experts) {
    float routed = 0.f;
    for (int k = 0; k < top_k; k++) {
        const int s = t * top_k + k;
        const int e = topk_ids[s];
        if (e >= 0 && e < experts) {
            routed += topk_weights[s] * y[(size_t) s * hidden + j];
        }
    }
    const size_t o = (size_t) t * hidden + j;
    const float mlp = shared != nullptr ? shared[o] + routed : routed;
    return residual != nullptr ? residual[o] + mlp : mlp;
}

} // namespace

extern "C" __global__ void __launch_bounds__(THREADS)
moe_combine(const float *__restrict__ y, const float *__restrict__ topk_weights, const int *__restrict__ topk_ids,
            const float *shared, const float *residual, float *out, int tokens, int top_k, int hidden, int experts) {
    const int j = blockIdx.x * THREADS + threadIdx.x;
    const int t = blockIdx.y;
    if (j >= hidden || t >= tokens) {
        return;
    }
    out[(size_t) t * hidden + j] = combined(y, topk_weights, topk_ids, shared, residual, t, j, top_k, hidden, experts);
}

static_assert(THREADS == rs_norm::THREADS, "moe_combine_norm runs rmsnorm.cuh's row with its block");

extern "C" __global__ void __launch_bounds__(THREADS)
moe_combine_norm(const float *__restrict__ y, const float *__restrict__ topk_weights, const int *__restrict__ topk_ids,
                 const float *shared, const float *residual, float *out, rs::bf16_t *__restrict__ norm_out,
                 const rs::bf16_t *__restrict__ norm_weight, int tokens, int top_k, int hidden, int experts, float eps) {
    __shared__ float scratch[WARPS];
    const int t = blockIdx.y;
    if (t >= tokens) {
        return;
    }
    for (int j = threadIdx.x; j < hidden; j += THREADS) {
        out[(size_t) t * hidden + j] = combined(y, topk_weights, topk_ids, shared, residual, t, j, top_k, hidden, experts);
    }
    __syncthreads(); // the row is written; the norm's threads read it in their own order
    rs_norm::rmsnorm_row(norm_out + (size_t) t * hidden, out + (size_t) t * hidden, nullptr, norm_weight, hidden, eps, scratch);
}
