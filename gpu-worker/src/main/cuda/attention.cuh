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
//     K_p, V_p staged in shared memory (16-byte loads; the next tile's loads are issued before this
//              tile is computed, so one memory latency per tile is hidden behind the arithmetic)
//     s[g][p]  = scale · (q_g · k_p)                               one thread per (g, p), d in order
//     m_new[g] = max(m[g], max_p s[g][p]);  c[g] = exp(m[g] − m_new[g])
//     e[g][p]  = exp(s[g][p] − m_new[g]);   l[g] = l[g]·c[g] + Σ_p e[g][p]
//     acc[g][:] = acc[g][:]·c[g] + Σ_p e[g][p] · v_p[:]           each thread owns fixed (g, i) elements
//   the caller normalises acc / l (or stores m, l, acc as a split-K partial).
// Keys are visited in ascending position order inside a block and every sum has a fixed order, so results
// are deterministic.
#pragma once

#include "vec.cuh"

namespace rs_attn {

constexpr int THREADS = 128;                        // 4 warps
constexpr int WARPS = THREADS / rs::WARP;
constexpr int TK = 32;                              // keys per tile (= one per lane in the softmax step)
constexpr int MAX_G = 8;                            // query heads per KV head
constexpr int MAX_D = 256;                          // head dim
constexpr int PER_THREAD = MAX_G * MAX_D / THREADS; // accumulator elements per thread, largest shape (16)
constexpr int ROW = MAX_D + 8;                      // bf16 per staged K/V row: 528 bytes, so the 8 lanes of a
                                                    // 16-byte shared access hit 8 different 4-bank groups
constexpr int STAGED = TK * (MAX_D / 8) / THREADS;  // 16-byte chunks of a K (or V) tile per thread, d = 256 (8)
// The kernels instantiate the core for two sizes (Shape): the small one (G·d <= 512, d <= 128: Ring-mini-2.0 and
// Ring-lite) keeps the unrolled code short enough for the instruction cache — the large one's fully unrolled loops
// are several times longer, and a decode step runs each attention kernel only briefly, from a cold cache.
constexpr int SMALL_PER_THREAD = 4;
constexpr int SMALL_STAGED = 4;

/** Whether the small instantiation covers G query heads of dimension d. */
__device__ __forceinline__ bool small_shape(int G, int d) {
    return G * d <= SMALL_PER_THREAD * THREADS && d <= SMALL_STAGED * THREADS * 8 / TK;
}

/** Shared state of one attention block; static shared memory, about 43 KB. */
struct Smem {
    __align__(16) float q[MAX_G * MAX_D];   // (G, d) the group's queries
    __align__(16) rs::bf16_t k[TK * ROW];   // (TK, d) the tile's keys, row stride ROW
    __align__(16) rs::bf16_t v[TK * ROW];   // (TK, d) the tile's values, row stride ROW
    float s[MAX_G][TK];                     // (G, TK) scores, then exp weights of the current tile
    float m[MAX_G];                         // (G) running max
    float l[MAX_G];                         // (G) running sum of exp
    float corr[MAX_G];                      // (G) rescale factor of the current tile
};

/** A thread's share of one K/V tile in flight: chunk c is 8 bf16 of key (tid + c·THREADS) / (d/8). */
template <int NS>
struct Staged {
    rs::vec16 k[NS];
    rs::vec16 v[NS];
};

/** KV cache row of key position p of this sequence; shift = log2(B) when B is a power of two, else -1. */
__device__ __forceinline__ long long slot_of(const int *__restrict__ table, int block_size, int shift, int p) {
    if (shift >= 0) {
        return ((long long) table[p >> shift] << shift) + (p & (block_size - 1));
    }
    return (long long) table[p / block_size] * block_size + p % block_size;
}

/**
 * Where this thread's 16-byte chunks of a tile lie: chunk c is part `part` of key row kk0 + c·kstep (the same for
 * every tile; THREADS is a multiple of d/8 for every power-of-two d, else the row is found by division).
 */
struct ChunkMap {
    int per_row; // d / 8
    int kk0;
    int kstep;   // 0: divide per chunk
    int part;

    __device__ __forceinline__ ChunkMap(int d) : per_row(d / 8) {
        kk0 = threadIdx.x / per_row;
        part = threadIdx.x - kk0 * per_row;
        kstep = THREADS % per_row == 0 ? THREADS / per_row : 0;
    }

    /** Key row of chunk c (TK or more: the chunk is past the tile) and its element offset in that row. */
    __device__ __forceinline__ int row(int c, int &col) const {
        if (kstep > 0) {
            col = part * 8;
            return kk0 + c * kstep;
        }
        const int idx = threadIdx.x + c * THREADS;
        const int kk = idx / per_row;
        col = (idx - kk * per_row) * 8;
        return kk;
    }
};

/** Issues the 16-byte loads of the tile starting at key `tile` (keys past key_end are not read). */
template <int NS>
__device__ __forceinline__ void fetch(Staged<NS> &st, const ChunkMap &map, const rs::bf16_t *__restrict__ k_cache,
                                      const rs::bf16_t *__restrict__ v_cache, const int *__restrict__ table, int block_size, int shift,
                                      int tile, int key_end, int kv_dim, long long head_off) {
#pragma unroll
    for (int c = 0; c < NS; c++) {
        int col;
        const int kk = map.row(c, col);
        if (kk < TK && tile + kk < key_end) {
            const long long at = slot_of(table, block_size, shift, tile + kk) * kv_dim + head_off + col;
            st.k[c] = rs::load16(k_cache + at);
            st.v[c] = rs::load16(v_cache + at);
        }
    }
}

/** Writes a fetched tile into sm.k / sm.v. */
template <int NS>
__device__ __forceinline__ void place(Smem &sm, const Staged<NS> &st, const ChunkMap &map, int tile, int key_end) {
#pragma unroll
    for (int c = 0; c < NS; c++) {
        int col;
        const int kk = map.row(c, col);
        if (kk < TK && tile + kk < key_end) {
            rs::store16(sm.k + kk * ROW + col, st.k[c]);
            rs::store16(sm.v + kk * ROW + col, st.v[c]);
        }
    }
}

/**
 * Attends queries q[g·d .. g·d+d) (g < G) to keys [key_begin, key_end) of one sequence; on return
 * acc[k] holds the unnormalised output element e = threadIdx.x + k·THREADS (g = e / d, i = e % d) for
 * e < G·d, and sm.m / sm.l the running max and sum per query head (m = −inf, l = 0 when the range is
 * empty). Every thread of the block must call it with the same arguments. NA accumulators per thread
 * (G·d <= NA·THREADS), NS staged 16-byte chunks per thread and tile (TK·d/8 <= NS·THREADS).
 *
 * @param q        const float* (G, d) fp32 queries of this group (contiguous)
 * @param k_cache  const bf16*  (S, Hkv·d)
 * @param v_cache  const bf16*  (S, Hkv·d)
 * @param table    const int*   (max_blocks) this sequence's block table
 */
template <int NA, int NS>
__device__ __forceinline__ void attend(Smem &sm, float (&acc)[NA], const float *__restrict__ q,
                                       const rs::bf16_t *__restrict__ k_cache, const rs::bf16_t *__restrict__ v_cache,
                                       const int *__restrict__ table, int block_size, int key_begin, int key_end,
                                       int G, int d, int kv_dim, int kv_head, float scale) {
    const int tid = threadIdx.x;
    const int lane = tid % rs::WARP;
    const int warp = tid / rs::WARP;
    const int gd = G * d;
    const long long head_off = (long long) kv_head * d;
    // 16-byte staging when every K/V row segment is 16-byte aligned; else element by element
    const bool vec = (d & 7) == 0 && (kv_dim & 7) == 0 && rs::aligned16(k_cache) && rs::aligned16(v_cache);
    const int shift = (block_size & (block_size - 1)) == 0 ? 31 - __clz(block_size) : -1;
    const ChunkMap map(vec ? d : 8);

    Staged<NS> st;
    if (vec && key_begin < key_end) {
        fetch(st, map, k_cache, v_cache, table, block_size, shift, key_begin, key_end, kv_dim, head_off);
    }
    for (int e = tid; e < gd; e += THREADS) {
        sm.q[e] = q[e];
    }
    if (tid < MAX_G) {
        sm.m[tid] = -INFINITY;
        sm.l[tid] = 0.f;
    }
#pragma unroll
    for (int k = 0; k < NA; k++) {
        acc[k] = 0.f;
    }

    for (int tile = key_begin; tile < key_end; tile += TK) {
        const int keys = min(TK, key_end - tile);
        __syncthreads(); // q/m/l initialised; the previous tile's k, v and s fully consumed
        if (vec) {
            place(sm, st, map, tile, key_end);
            if (tile + TK < key_end) { // the next tile's loads overlap this tile's arithmetic
                fetch(st, map, k_cache, v_cache, table, block_size, shift, tile + TK, key_end, kv_dim, head_off);
            }
        } else {
            for (int idx = tid; idx < keys * d; idx += THREADS) {
                const int kk = idx / d;
                const int i = idx - kk * d;
                const long long at = slot_of(table, block_size, shift, tile + kk) * kv_dim + head_off + i;
                sm.k[kk * ROW + i] = k_cache[at];
                sm.v[kk * ROW + i] = v_cache[at];
            }
        }
        __syncthreads();

        // 1. scores: thread (g, kk) for g·TK + kk = tid, tid + THREADS, ...; the dot runs over d in order
        for (int p = tid; p < G * TK; p += THREADS) {
            const int g = p / TK;
            const int kk = p - g * TK;
            float dot = 0.f;
            if (kk < keys) {
                const float *qg = sm.q + g * d;
                const rs::bf16_t *kr = sm.k + kk * ROW;
                if (vec) {
                    for (int i = 0; i < d; i += 8) { // q: two 16-byte reads, the same address across the warp
                        float kf[8];
                        rs::unpack8(rs::load16_rw(kr + i), kf);
                        const rs::vec16 qa = rs::load16_rw(qg + i);
                        const rs::vec16 qb = rs::load16_rw(qg + i + 4);
                        dot = fmaf(__uint_as_float(qa.x), kf[0], dot);
                        dot = fmaf(__uint_as_float(qa.y), kf[1], dot);
                        dot = fmaf(__uint_as_float(qa.z), kf[2], dot);
                        dot = fmaf(__uint_as_float(qa.w), kf[3], dot);
                        dot = fmaf(__uint_as_float(qb.x), kf[4], dot);
                        dot = fmaf(__uint_as_float(qb.y), kf[5], dot);
                        dot = fmaf(__uint_as_float(qb.z), kf[6], dot);
                        dot = fmaf(__uint_as_float(qb.w), kf[7], dot);
                    }
                } else {
                    for (int i = 0; i < d; i++) {
                        dot = fmaf(qg[i], rs::bf16_to_f32(kr[i]), dot);
                    }
                }
            }
            sm.s[g][kk] = kk < keys ? dot * scale : -INFINITY;
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
#pragma unroll
        for (int k = 0; k < NA; k++) {
            const int e = tid + k * THREADS;
            if (e < gd) {
                const int g = e / d;
                const int i = e - g * d;
                float a = acc[k] * sm.corr[g];
                for (int kk = 0; kk < keys; kk++) {
                    a = fmaf(sm.s[g][kk], rs::bf16_to_f32(sm.v[kk * ROW + i]), a);
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
template <int NA>
__device__ __forceinline__ void store_normalised(const Smem &sm, const float (&acc)[NA], float *out, rs::bf16_t *out_bf16,
                                                 long long first, int G, int d) {
#pragma unroll
    for (int k = 0; k < NA; k++) {
        const int e = threadIdx.x + k * THREADS;
        if (e < G * d) {
            const float l = sm.l[e / d];
            store(out, out_bf16, first + e, l > 0.f ? acc[k] / l : 0.f);
        }
    }
}

} // namespace rs_attn
