// attention.cuh — the attention core shared by attention_decode.cu and attention_prefill.cu: one thread
// block attends the G = H / Hkv query heads of one KV head (one query token) over a range of key
// positions of one sequence's paged KV cache, so each K/V row is read once for the whole group.
//
// Legend: G = query heads per KV head (GQA group), d = head dim, TK = keys per tile, B = KV block size,
// S = rows of one layer's KV cache (blocks · B), Hkv·d = KV row width.
//
// Algorithm (flash-attention style online softmax, all in fp32; the reference is the plain softmax of
// ReferenceForward.attention()):
//   for each tile of TK key positions p in [key_begin, key_end):
//     slot_p   = table[p / B]·B + p % B                           (reference.PagedKvCache layout)
//     s[g][p]  = scale · (q_g · k_p)                               one warp per key, lanes split d
//     m_new[g] = max(m[g], max_p s[g][p]);  c[g] = exp(m[g] − m_new[g])
//     e[g][p]  = exp(s[g][p] − m_new[g]);   l[g] = l[g]·c[g] + Σ_p e[g][p]
//     acc[g][:] = acc[g][:]·c[g] + Σ_p e[g][p] · v_p[:]           each thread owns fixed (g, i) elements
//   the caller normalises acc / l (or stores m, l, acc as a split-K partial).
// Keys are visited in ascending position order inside a block, so results are deterministic.
#pragma once

#include "common.cuh"

namespace rs_attn {

constexpr int THREADS = 128;                        // 4 warps
constexpr int WARPS = THREADS / rs::WARP;
constexpr int TK = 32;                              // keys per tile (= one per lane in the softmax step)
constexpr int MAX_G = 8;                            // query heads per KV head
constexpr int MAX_D = 256;                          // head dim
constexpr int PER_THREAD = MAX_G * MAX_D / THREADS; // accumulator elements per thread (16)

/** Shared state of one attention block; static shared memory, about 9.5 KB. */
struct Smem {
    float q[MAX_G * MAX_D]; // (G, d) the group's queries
    float s[MAX_G][TK];     // (G, TK) scores, then exp weights of the current tile
    int slot[TK];           // (TK) KV cache row of each key of the tile; -1 past key_end
    float m[MAX_G];         // (G) running max
    float l[MAX_G];         // (G) running sum of exp
    float corr[MAX_G];      // (G) rescale factor of the current tile
};

/**
 * Attends queries q[g·d .. g·d+d) (g < G) to keys [key_begin, key_end) of one sequence; on return
 * acc[k] holds the unnormalised output element e = threadIdx.x + k·THREADS (g = e / d, i = e % d) for
 * e < G·d, and sm.m / sm.l the running max and sum per query head (m = −inf, l = 0 when the range is
 * empty). Every thread of the block must call it with the same arguments.
 *
 * @param q        const float* (G, d) fp32 queries of this group (contiguous)
 * @param k_cache  const bf16*  (S, Hkv·d)
 * @param v_cache  const bf16*  (S, Hkv·d)
 * @param table    const int*   (max_blocks) this sequence's block table
 */
__device__ __forceinline__ void attend(Smem &sm, float (&acc)[PER_THREAD], const float *__restrict__ q,
                                       const rs::bf16_t *__restrict__ k_cache, const rs::bf16_t *__restrict__ v_cache,
                                       const int *__restrict__ table, int block_size, int key_begin, int key_end,
                                       int G, int d, int kv_dim, int kv_head, float scale) {
    const int tid = threadIdx.x;
    const int lane = tid % rs::WARP;
    const int warp = tid / rs::WARP;
    const int gd = G * d;

    for (int e = tid; e < gd; e += THREADS) {
        sm.q[e] = q[e];
    }
    if (tid < MAX_G) {
        sm.m[tid] = -INFINITY;
        sm.l[tid] = 0.f;
    }
#pragma unroll
    for (int k = 0; k < PER_THREAD; k++) {
        acc[k] = 0.f;
    }
    const long long head_off = (long long) kv_head * d;

    for (int tile = key_begin; tile < key_end; tile += TK) {
        __syncthreads(); // q/m/l initialised; the previous tile's s and slot fully consumed
        if (tid < TK) {
            const int p = tile + tid;
            sm.slot[tid] = p < key_end ? table[p / block_size] * block_size + p % block_size : -1;
        }
        __syncthreads();

        // 1. scores: warp w takes keys w, w+4, ... of the tile
        for (int kk = warp; kk < TK; kk += WARPS) {
            const int slot = sm.slot[kk]; // warp-uniform
            if (slot < 0) {
                if (lane < G) {
                    sm.s[lane][kk] = -INFINITY;
                }
                continue;
            }
            const rs::bf16_t *krow = k_cache + (long long) slot * kv_dim + head_off; // (d)
            float part[MAX_G];
#pragma unroll
            for (int g = 0; g < MAX_G; g++) {
                part[g] = 0.f;
            }
            for (int i = lane; i < d; i += rs::WARP) {
                const float kv = rs::bf16_to_f32(krow[i]);
#pragma unroll
                for (int g = 0; g < MAX_G; g++) {
                    if (g < G) {
                        part[g] += sm.q[g * d + i] * kv;
                    }
                }
            }
#pragma unroll
            for (int g = 0; g < MAX_G; g++) {
                if (g < G) { // G is block-uniform: the whole warp reduces
                    const float dot = rs::warp_sum(part[g]);
                    if (lane == 0) {
                        sm.s[g][kk] = dot * scale;
                    }
                }
            }
        }
        __syncthreads();

        // 2. online softmax update: warp w takes query heads w, w+4; lane = key of the tile
        for (int g = warp; g < G; g += WARPS) {
            const float sc = sm.s[g][lane];
            const float m_old = sm.m[g];
            const float m_new = fmaxf(m_old, rs::warp_max(sc)); // finite: the tile has >= 1 key
            const float ex = sc == -INFINITY ? 0.f : expf(sc - m_new);
            sm.s[g][lane] = ex;
            const float sum = rs::warp_sum(ex);
            if (lane == 0) {
                const float c = m_old == -INFINITY ? 0.f : expf(m_old - m_new);
                sm.corr[g] = c;
                sm.l[g] = sm.l[g] * c + sum;
                sm.m[g] = m_new;
            }
        }
        __syncthreads();

        // 3. acc = acc·corr + Σ_p e_p · v_p over the tile's keys, in key order
        const int keys = min(TK, key_end - tile);
#pragma unroll
        for (int k = 0; k < PER_THREAD; k++) {
            const int e = tid + k * THREADS;
            if (e < gd) {
                const int g = e / d;
                const int i = e - g * d;
                float a = acc[k] * sm.corr[g];
                for (int kk = 0; kk < keys; kk++) {
                    const float v = rs::bf16_to_f32(v_cache[(long long) sm.slot[kk] * kv_dim + head_off + i]);
                    a += sm.s[g][kk] * v;
                }
                acc[k] = a;
            }
        }
    }
    __syncthreads(); // m, l final and visible to every thread
}

/** Writes one output element: to out_bf16 rounded to bf16 when it is given, else to out in fp32. */
__device__ __forceinline__ void store(float *out, rs::bf16_t *out_bf16, long long i, float v) {
    if (out_bf16 != nullptr) {
        out_bf16[i] = rs::f32_to_bf16(v);
    } else {
        out[i] = v;
    }
}

/**
 * The normalised output of attend(): each of the G heads' d values acc / l (0 where no key was attended), stored
 * from out[first] on (the group's first head) as store() does.
 */
__device__ __forceinline__ void store_normalised(const Smem &sm, const float (&acc)[PER_THREAD], float *out, rs::bf16_t *out_bf16,
                                                 long long first, int G, int d) {
#pragma unroll
    for (int k = 0; k < PER_THREAD; k++) {
        const int e = threadIdx.x + k * THREADS;
        if (e < G * d) {
            const float l = sm.l[e / d];
            store(out, out_bf16, first + e, l > 0.f ? acc[k] / l : 0.f);
        }
    }
}

} // namespace rs_attn
