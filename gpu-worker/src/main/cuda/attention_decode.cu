// attention_decode.cu — decode attention: one new query token per sequence over its paged KV cache
// (which already holds that token's K/V, written by qk_norm_rope_cache). GQA: one block per
// (KV head, sequence) serves the KV head's G = H / Hkv query heads, so each K/V row is read once.
// Core loop: attention.cuh (fp32 online softmax over tiles of 32 keys). Mirrors the attention loop of
// ReferenceForward.attention() for a token at position ctx − 1.
//
// Legend: N = sequences in the batch, H = query heads, Hkv = KV heads, G = H / Hkv, d = head dim,
// B = KV block size, MB = max blocks per sequence (block table width), S = rows of one layer's KV cache,
// Z = split-K partitions.
//
// Two ways to run it:
//   * attention_decode: one pass, output normalised. Enough while N·Hkv blocks fill the GPU or the
//     context is short.
//   * attention_decode_split (flash-decoding): each sequence's context is cut into Z ranges of kps keys,
//     kps = max(min_keys_per_split, ceil(ctx / Z) rounded up to 32), so a short context still spreads
//     over several blocks and a long one over all Z; each block writes a partial (max m, sum l,
//     unnormalised acc), and the last of a (KV head, sequence)'s Z blocks to finish merges them for the
//     group's G heads: M = max_z m_z, w_z = exp(m_z − M), out = Σ_z w_z·acc_z / Σ_z w_z·l_z. "Last" is
//     counted on a device counter per (sequence, KV head), after a memory fence, and the merging block sets
//     it back to 0, so the counters stay 0 between launches (CUDA graphs replay the launch as captured). Z and min_keys_per_split are fixed per
//     CUDA graph (kps follows each sequence's context, read on the device); ranges past a sequence's
//     context are empty partials (m = −inf, l = 0) that weigh nothing. A sequence's result depends on
//     its own context and Z only, not on the other sequences of the batch.
// Both are deterministic: fixed reduction orders, and the merge does not depend on which block runs it (the
// counters' atomics pick the block, not the order of any sum).
//
// Launch contract, attention_decode:
//   grid  (Hkv, N, 1), block (128, 1, 1), dynamic shared memory 0 (static ≈ 9.5 KB)
//   host checks: H % Hkv == 0, G <= 8, d <= 256, B >= 1
//   q            const float* [N, H·d]      fp32 query of each sequence's new token (after norm/RoPE)
//   k_cache      const bf16*  [S, Hkv·d]    this layer's keys
//   v_cache      const bf16*  [S, Hkv·d]    this layer's values
//   block_tables const int*   [N, MB]       block ids of each sequence in position order
//   context_lens const int*   [N]           keys to attend (= position of the new token + 1); <= 0: output 0;
//                                           clamped to MB·B
//   out          float*       [N, H·d]      fp32 attention output, heads in head order; not written when
//                                           out_bf16 is given
//   out_bf16     bf16*        [N, H·d]      the output rounded to bf16 instead (the o_proj GEMV's input), or null
//   num_seqs, heads, kv_heads, head_dim, block_size, max_blocks  ints as named
//   scale        float                      1/sqrt(d)
//
// Launch contract, attention_decode_split:
//   grid  (Hkv, N, Z), block (128, 1, 1), dynamic shared memory 0
//   the arguments of attention_decode (out or out_bf16 receives the merged result), and:
//   part_acc     float*       [N, H, Z, d]  unnormalised Σ exp(s − m)·v of split z
//   part_m       float*       [N, H, Z]     max score of split z (−inf when empty)
//   part_l       float*       [N, H, Z]     Σ exp(s − m) of split z (0 when empty)
//   done         unsigned*    [N, Hkv]      finished splits per (sequence, KV head): 0 when the kernel starts,
//                                           0 again when it ends
//   min_keys_per_split int                  least keys per split (> 0); split z covers [z·kps, (z+1)·kps)
//   (Z is taken from gridDim.z)
#include "attention.cuh"

using rs_attn::THREADS;

namespace {

/** Keys of sequence `seq`, clamped to what its block table can address. */
__device__ __forceinline__ int context_of(const int *context_lens, int seq, int block_size, int max_blocks) {
    const long long cap = (long long) block_size * max_blocks;
    const int ctx = context_lens[seq];
    return ctx < 0 ? 0 : (int) min((long long) ctx, cap);
}

template <int NA, int NS>
__device__ __forceinline__ void decode_block(rs_attn::Smem &sm, const float *__restrict__ q, const rs::bf16_t *__restrict__ k_cache,
                                             const rs::bf16_t *__restrict__ v_cache, const int *__restrict__ block_tables,
                                             const int *__restrict__ context_lens, float *__restrict__ out, rs::bf16_t *__restrict__ out_bf16,
                                             int heads, int kv_heads, int head_dim, int block_size, int max_blocks, float scale) {
    const int kv_head = blockIdx.x;
    const int seq = blockIdx.y;
    const int G = heads / kv_heads;
    const int d = head_dim;
    const long long q_off = (long long) seq * heads * d + (long long) kv_head * G * d; // first head of the group
    const int ctx = context_of(context_lens, seq, block_size, max_blocks);

    float acc[NA];
    rs_attn::attend<NA, NS>(sm, acc, q + q_off, k_cache, v_cache, block_tables + (long long) seq * max_blocks, block_size,
                            0, ctx, G, d, kv_heads * d, kv_head, scale);
    rs_attn::store_normalised<NA>(sm, acc, out, out_bf16, q_off, G, d);
}

/**
 * Merges the Z partials of head h of sequence seq into out / out_bf16 (element i = threadIdx.x + k·THREADS).
 * Every thread of the block calls it. The partials were written by other blocks of this launch: read through L2.
 */
__device__ __forceinline__ void merge_head(const float *part_acc, const float *part_m, const float *part_l, float *__restrict__ out,
                                           rs::bf16_t *__restrict__ out_bf16, int seq, int h, int heads, int head_dim, int splits,
                                           float *weight, float *red) {
    const int tid = threadIdx.x;
    const long long base = ((long long) seq * heads + h) * splits; // (Z) partials of this (seq, head)
    float big = -INFINITY;
    for (int z = tid; z < splits; z += THREADS) {
        big = fmaxf(big, __ldcg(part_m + base + z));
    }
    big = rs::block_max(big, red);
    float total = 0.f;
    for (int z = tid; z < splits; z += THREADS) {
        const float m = __ldcg(part_m + base + z);
        total += m == -INFINITY ? 0.f : __ldcg(part_l + base + z) * expf(m - big);
    }
    total = rs::block_sum(total, red); // fixed order: per thread, then the block's tree
    const long long o = ((long long) seq * heads + h) * head_dim; // this head's output
    for (int i0 = 0; i0 < head_dim; i0 += THREADS) { // block-uniform loop: the barriers below are reached by all
        const int i = i0 + tid;
        float a = 0.f;
        for (int z0 = 0; z0 < splits; z0 += THREADS) {
            const int n = min(THREADS, splits - z0);
            __syncthreads(); // the previous chunk's weights consumed
            if (tid < n) {
                const float m = __ldcg(part_m + base + z0 + tid);
                weight[tid] = m == -INFINITY ? 0.f : expf(m - big);
            }
            __syncthreads();
            if (i < head_dim) {
                const float *acc = part_acc + (base + z0) * head_dim + i; // column i of (n, d)
#pragma unroll 8
                for (int z = 0; z < n; z++) {
                    a = fmaf(__ldcg(acc + (long long) z * head_dim), weight[z], a); // an empty split's acc is 0 with weight 0
                }
            }
        }
        if (i < head_dim) {
            rs_attn::store(out, out_bf16, o + i, total > 0.f ? a / total : 0.f);
        }
    }
}

template <int NA, int NS>
__device__ __forceinline__ void split_block(rs_attn::Smem &sm, const float *__restrict__ q, const rs::bf16_t *__restrict__ k_cache,
                                            const rs::bf16_t *__restrict__ v_cache, const int *__restrict__ block_tables,
                                            const int *__restrict__ context_lens, float *__restrict__ out, rs::bf16_t *__restrict__ out_bf16,
                                            float *__restrict__ part_acc, float *__restrict__ part_m, float *__restrict__ part_l,
                                            unsigned *__restrict__ done, int heads, int kv_heads, int head_dim, int block_size, int max_blocks,
                                            float scale, int min_keys_per_split) {
    const int kv_head = blockIdx.x;
    const int seq = blockIdx.y;
    const int split = blockIdx.z;
    const int splits = gridDim.z;
    const int G = heads / kv_heads;
    const int d = head_dim;
    const long long q_off = (long long) seq * heads * d + (long long) kv_head * G * d;
    const int ctx = context_of(context_lens, seq, block_size, max_blocks);
    const int even = ((ctx + splits - 1) / splits + 31) / 32 * 32; // ceil(ctx / Z), rounded up to 32
    const int keys_per_split = max(min_keys_per_split, even);
    const long long begin_ll = (long long) split * keys_per_split;
    const int begin = (int) min(begin_ll, (long long) ctx);
    const int end = (int) min(begin_ll + keys_per_split, (long long) ctx);

    float acc[NA];
    rs_attn::attend<NA, NS>(sm, acc, q + q_off, k_cache, v_cache, block_tables + (long long) seq * max_blocks, block_size,
                            begin, end, G, d, kv_heads * d, kv_head, scale);

    // partial of query head h = kv_head·G + g at [seq, h, split]
#pragma unroll
    for (int k = 0; k < NA; k++) {
        const int e = threadIdx.x + k * THREADS;
        if (e < G * d) {
            const int g = e / d;
            const int i = e - g * d;
            const long long h = (long long) kv_head * G + g;
            part_acc[(((long long) seq * heads + h) * splits + split) * d + i] = acc[k];
        }
    }
    if ((int) threadIdx.x < G) {
        const long long h = (long long) kv_head * G + threadIdx.x;
        const long long idx = ((long long) seq * heads + h) * splits + split;
        part_m[idx] = sm.m[threadIdx.x];
        part_l[idx] = sm.l[threadIdx.x];
    }

    // the last of this (sequence, KV head)'s Z blocks merges the group's partials
    __shared__ int last;
    __shared__ float weight[THREADS];
    __shared__ float red[rs_attn::WARPS];
    __threadfence(); // this block's partials reach L2 before its count says they are there
    __syncthreads();
    unsigned *counter = done + (long long) seq * kv_heads + kv_head;
    if (threadIdx.x == 0) {
        last = atomicAdd(counter, 1u) == (unsigned) splits - 1;
    }
    __syncthreads();
    if (last) {
        __threadfence(); // the other blocks' partials are read after their counts, through L2
        for (int g = 0; g < G; g++) {
            merge_head(part_acc, part_m, part_l, out, out_bf16, seq, kv_head * G + g, heads, d, splits, weight, red);
        }
        if (threadIdx.x == 0) {
            *counter = 0; // as the launch found it
        }
    }
}

} // namespace

extern "C" __global__ void __launch_bounds__(THREADS, 3)
attention_decode(const float *__restrict__ q, const rs::bf16_t *__restrict__ k_cache, const rs::bf16_t *__restrict__ v_cache,
                 const int *__restrict__ block_tables, const int *__restrict__ context_lens, float *__restrict__ out,
                 rs::bf16_t *__restrict__ out_bf16, int num_seqs, int heads, int kv_heads, int head_dim, int block_size, int max_blocks, float scale) {
    __shared__ rs_attn::Smem sm;
    if ((int) blockIdx.y >= num_seqs || (int) blockIdx.x >= kv_heads) {
        return;
    }
    if (rs_attn::small_shape(heads / kv_heads, head_dim)) {
        decode_block<rs_attn::SMALL_PER_THREAD, rs_attn::SMALL_STAGED>(sm, q, k_cache, v_cache, block_tables, context_lens, out, out_bf16,
                                                                       heads, kv_heads, head_dim, block_size, max_blocks, scale);
    } else {
        decode_block<rs_attn::PER_THREAD, rs_attn::STAGED>(sm, q, k_cache, v_cache, block_tables, context_lens, out, out_bf16,
                                                           heads, kv_heads, head_dim, block_size, max_blocks, scale);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS, 3)
attention_decode_split(const float *__restrict__ q, const rs::bf16_t *__restrict__ k_cache, const rs::bf16_t *__restrict__ v_cache,
                       const int *__restrict__ block_tables, const int *__restrict__ context_lens, float *__restrict__ out,
                       rs::bf16_t *__restrict__ out_bf16, float *__restrict__ part_acc, float *__restrict__ part_m, float *__restrict__ part_l,
                       unsigned *__restrict__ done, int num_seqs, int heads, int kv_heads, int head_dim, int block_size, int max_blocks,
                       float scale, int min_keys_per_split) {
    __shared__ rs_attn::Smem sm;
    if ((int) blockIdx.y >= num_seqs || (int) blockIdx.x >= kv_heads) {
        return;
    }
    if (rs_attn::small_shape(heads / kv_heads, head_dim)) {
        split_block<rs_attn::SMALL_PER_THREAD, rs_attn::SMALL_STAGED>(sm, q, k_cache, v_cache, block_tables, context_lens, out, out_bf16,
                                                                      part_acc, part_m, part_l, done, heads, kv_heads, head_dim, block_size,
                                                                      max_blocks, scale, min_keys_per_split);
    } else {
        split_block<rs_attn::PER_THREAD, rs_attn::STAGED>(sm, q, k_cache, v_cache, block_tables, context_lens, out, out_bf16, part_acc, part_m,
                                                          part_l, done, heads, kv_heads, head_dim, block_size, max_blocks, scale,
                                                          min_keys_per_split);
    }
}
