// attention_prefill.cu — causal attention for the new tokens of a batch of sequences (prefill or a
// prompt chunk, several sequences concatenated in one step) over the paged KV cache, which already
// holds the new tokens' K/V (qk_norm_rope_cache runs first). Token row t of sequence row_seq[t] at
// position positions[t] attends keys 0 .. positions[t] of that sequence (causal: key ≤ query position),
// exactly as ReferenceForward.attention() does per (token, head).
//
// This first version is the correctness baseline: one block per (KV head, token row) running the
// shared core of attention.cuh (fp32 online softmax, tiles of 32 keys, GQA group of G query heads per
// block so K/V rows are read once per token). K/V of a sequence are re-read for each of its rows (from
// L2), i.e. O(T·ctx) traffic; a tensor-core kernel tiling query rows as well replaces it once it wins a
// bench (speed is a later issue).
//
// Legend: T = token rows in the step, N = sequences, H = query heads, Hkv = KV heads, G = H / Hkv,
// d = head dim, B = KV block size, MB = block table width, S = rows of one layer's KV cache.
//
// Launch contract, attention_prefill:
//   grid  (Hkv, T, 1), block (128, 1, 1), dynamic shared memory 0 (static ≈ 9.5 KB)
//   host checks: H % Hkv == 0, G <= 8, d <= 256, B >= 1, every positions[t] < MB·B
//   q            const float* [T, H·d]    fp32 queries after norm/RoPE (qk_norm_rope_cache's q_out)
//   k_cache      const bf16*  [S, Hkv·d]  this layer's keys
//   v_cache      const bf16*  [S, Hkv·d]  this layer's values
//   block_tables const int*   [N, MB]     block ids of each sequence in position order
//   row_seq      const int*   [T]         which block-table row token t belongs to (0 <= row_seq < N)
//   positions    const int*   [T]         absolute position of token t; it attends keys 0..position
//                                         (< 0: the row is padding and its output is 0; clamped to MB·B − 1)
//   out          float*       [T, H·d]    fp32 attention output, heads in head order; not written when out_bf16 is given
//   out_bf16     bf16*        [T, H·d]    the output rounded to bf16 instead (the o_proj GEMM's input), or null
//   tokens, heads, kv_heads, head_dim, block_size, max_blocks  ints as named
//   scale        float                    1/sqrt(d)
#include "attention.cuh"

using rs_attn::THREADS;

namespace {

template <int NA, int NS>
__device__ __forceinline__ void prefill_block(rs_attn::Smem &sm, const float *__restrict__ q, const rs::bf16_t *__restrict__ k_cache,
                                              const rs::bf16_t *__restrict__ v_cache, const int *__restrict__ block_tables,
                                              const int *__restrict__ row_seq, const int *__restrict__ positions, float *__restrict__ out,
                                              rs::bf16_t *__restrict__ out_bf16, int heads, int kv_heads, int head_dim, int block_size,
                                              int max_blocks, float scale) {
    const int kv_head = blockIdx.x;
    const int t = blockIdx.y;
    const int G = heads / kv_heads;
    const int d = head_dim;
    const long long q_off = (long long) t * heads * d + (long long) kv_head * G * d; // first head of the group
    const int pos = positions[t];
    const long long cap = (long long) block_size * max_blocks;
    const int keys = pos < 0 ? 0 : (int) min((long long) pos + 1, cap);
    const int seq = row_seq[t];

    float acc[NA];
    rs_attn::attend<NA, NS>(sm, acc, q + q_off, k_cache, v_cache, block_tables + (long long) seq * max_blocks, block_size,
                            0, keys, G, d, kv_heads * d, kv_head, scale);
    rs_attn::store_normalised<NA>(sm, acc, out, out_bf16, q_off, G, d);
}

} // namespace

extern "C" __global__ void __launch_bounds__(THREADS, 3)
attention_prefill(const float *__restrict__ q, const rs::bf16_t *__restrict__ k_cache, const rs::bf16_t *__restrict__ v_cache,
                  const int *__restrict__ block_tables, const int *__restrict__ row_seq, const int *__restrict__ positions,
                  float *__restrict__ out, rs::bf16_t *__restrict__ out_bf16, int tokens, int heads, int kv_heads, int head_dim, int block_size, int max_blocks,
                  float scale) {
    __shared__ rs_attn::Smem sm;
    if ((int) blockIdx.y >= tokens || (int) blockIdx.x >= kv_heads) {
        return;
    }
    if (rs_attn::small_shape(heads / kv_heads, head_dim)) {
        prefill_block<rs_attn::SMALL_PER_THREAD, rs_attn::SMALL_STAGED>(sm, q, k_cache, v_cache, block_tables, row_seq, positions, out, out_bf16,
                                                                        heads, kv_heads, head_dim, block_size, max_blocks, scale);
    } else {
        prefill_block<rs_attn::PER_THREAD, rs_attn::STAGED>(sm, q, k_cache, v_cache, block_tables, row_seq, positions, out, out_bf16, heads,
                                                            kv_heads, head_dim, block_size, max_blocks, scale);
    }
}
