// qk_norm_rope_cache.cu — the step between the fused QKV projection and attention, one kernel:
// per-head RMSNorm of q and k (V2 only), partial NeoX RoPE on q and k, k and v written to the paged
// KV cache. Mirrors ReferenceForward.attention() up to the KV write (ReferenceOps.rmsnorm / rope).
//
// Legend: T = tokens, H = query heads, Hkv = KV heads, d = head dim, r = rotary dims,
// P = rows of the cos/sin tables (max positions), S = rows of one layer's KV cache (blocks · B).
//
// Head slots of a qkv row (docs/MODEL.md §3.4): heads 0..H-1 = Q, H..H+Hkv-1 = K, H+Hkv..H+2Hkv-1 = V,
// each d contiguous floats.
//
// RoPE (NeoX / rotate_half, partial): within the first r dims of a head, dim j pairs with j + r/2
// (j < r/2): x'[j] = x[j]·cos_j − x[j+r/2]·sin_j, x'[j+r/2] = x[j+r/2]·cos_j + x[j]·sin_j; dims r..d
// pass through. cos_j/sin_j come from host tables filled by reference.RotaryEmbedding.angles(p, ..)
// (YaRN frequencies and attention factor already folded in), row p = position.
//
// Launch contract (kernel qk_norm_rope_cache):
//   grid  (T, ceil((H + 2·Hkv) / 4), 1)   one block per token and four head slots
//   block (128, 1, 1)    4 warps; warp w of block y handles head slot 4·y + w (< H + 2·Hkv)
//   dynamic shared memory: 0 (static 4·256 floats)
//   host checks: d <= 256, d even, r even, 0 < r <= d
//
// Arguments:
//   qkv        const float*  [T, (H + 2·Hkv)·d]  fp32 projection output (Q | K | V head slots)
//   positions  const int*    [T]                 absolute position of each token, 0 <= p < max_pos
//   slots      const int*    [T]                 KV cache row of each token (block_table[p / B]·B + p % B);
//                                                 outside [0, S): the token's K/V are not written (padding row)
//   cos_table  const float*  [P, r/2]            cos(p·θ_j)·attention_factor
//   sin_table  const float*  [P, r/2]            sin(p·θ_j)·attention_factor
//   q_norm     const bf16*   [d]                 query_layernorm.weight (read only when use_qk_norm)
//   k_norm     const bf16*   [d]                 key_layernorm.weight   (read only when use_qk_norm)
//   q_out      float*        [T, H·d]            fp32 q after norm and RoPE, heads in head order
//   k_cache    bf16*         [S, Hkv·d]          this layer's key cache; row `slot` is written
//   v_cache    bf16*         [S, Hkv·d]          this layer's value cache; row `slot` is written
//   tokens, heads, kv_heads, head_dim, rotary_dim, max_pos   ints as named
//   cache_rows int           S, rows of k_cache / v_cache (a slot outside [0, S) is never written)
//   use_qk_norm int          1: RMSNorm q and k heads first (V2); 0: no norm (v1)
//   eps        float         RMSNorm epsilon (rms_norm_eps)
// A position outside [0, max_pos) writes NaN to the token's q and K row so the mistake shows.
#include "common.cuh"

namespace {

constexpr int THREADS = 128;
constexpr int WARPS = THREADS / rs::WARP;
constexpr int MAX_HEAD_DIM = 256;
constexpr int PER_LANE = MAX_HEAD_DIM / rs::WARP; // head elements per lane (8)

} // namespace

extern "C" __global__ void __launch_bounds__(THREADS)
qk_norm_rope_cache(const float *__restrict__ qkv, const int *__restrict__ positions, const int *__restrict__ slots,
                   const float *__restrict__ cos_table, const float *__restrict__ sin_table,
                   const rs::bf16_t *__restrict__ q_norm, const rs::bf16_t *__restrict__ k_norm,
                   float *__restrict__ q_out, rs::bf16_t *__restrict__ k_cache, rs::bf16_t *__restrict__ v_cache,
                   int tokens, int heads, int kv_heads, int head_dim, int rotary_dim, int max_pos,
                   int cache_rows, int use_qk_norm, float eps) {
    __shared__ float head_buf[WARPS][MAX_HEAD_DIM]; // (warps, d) one head per warp

    const int t = blockIdx.x;
    const int lane = threadIdx.x % rs::WARP;
    const int warp = threadIdx.x / rs::WARP;
    const int d = head_dim;
    const int half = rotary_dim / 2;
    const int slot_count = heads + 2 * kv_heads;
    const int h = blockIdx.y * WARPS + warp; // this warp's head slot
    if (t >= tokens || h >= slot_count) {
        return; // warp-uniform; the kernel has no block-wide barrier
    }
    const long long kv_dim = (long long) kv_heads * d;
    const float *src = qkv + ((long long) t * slot_count + h) * d; // (d) this head of the token's qkv row
    const int pos = positions[t];
    const bool pos_ok = pos >= 0 && pos < max_pos;
    const int slot = slots[t] < cache_rows ? slots[t] : -1; // -1: no KV write
    const float *cos_row = cos_table + (long long) (pos_ok ? pos : 0) * half; // (r/2)
    const float *sin_row = sin_table + (long long) (pos_ok ? pos : 0) * half; // (r/2)
    float *buf = head_buf[warp];

    // the head, PER_LANE elements per lane (i = lane + 32·k), every load issued before the first use
    float x[PER_LANE];
#pragma unroll
    for (int k = 0; k < PER_LANE; k++) {
        const int i = lane + k * rs::WARP;
        x[k] = i < d ? src[i] : 0.f;
    }
    if (h >= heads + kv_heads) {
        // V: copied as projected, rounded to bf16
        if (slot >= 0) {
            rs::bf16_t *dst = v_cache + (long long) slot * kv_dim + (long long) (h - heads - kv_heads) * d;
#pragma unroll
            for (int k = 0; k < PER_LANE; k++) {
                const int i = lane + k * rs::WARP;
                if (i < d) {
                    dst[i] = rs::f32_to_bf16(x[k]);
                }
            }
        }
        return;
    }
    const bool is_q = h < heads;
    // 1. optional RMSNorm over the head's d dims: y = w ⊙ (x · rsqrt(mean(x²) + eps))
    if (use_qk_norm) {
        const rs::bf16_t *w = is_q ? q_norm : k_norm;
        float ss = 0.f;
        float wf[PER_LANE];
#pragma unroll
        for (int k = 0; k < PER_LANE; k++) {
            const int i = lane + k * rs::WARP;
            wf[k] = i < d ? rs::bf16_to_f32(w[i]) : 0.f;
            ss += x[k] * x[k];
        }
        ss = rs::warp_sum(ss);
        const float inv = rsqrtf(ss / (float) d + eps);
#pragma unroll
        for (int k = 0; k < PER_LANE; k++) {
            x[k] = wf[k] * (x[k] * inv);
        }
    }
#pragma unroll
    for (int k = 0; k < PER_LANE; k++) {
        const int i = lane + k * rs::WARP;
        if (i < d) {
            buf[i] = x[k];
        }
    }
    __syncwarp();
    // 2. RoPE on the first r dims: pairs (j, j + r/2); each lane reads and writes only its own pairs
    for (int j = lane; j < half; j += rs::WARP) {
        const float a = buf[j];
        const float b = buf[j + half];
        const float c = cos_row[j];
        const float s = sin_row[j];
        buf[j] = a * c - b * s;
        buf[j + half] = b * c + a * s;
    }
    __syncwarp();
    // 3. store: q as fp32 for attention, k into the cache as bf16
    const float poison = pos_ok ? 0.f : __uint_as_float(0x7fc00000u); // NaN when the position is bad
    if (is_q) {
        float *dst = q_out + (long long) t * heads * d + (long long) h * d;
        for (int i = lane; i < d; i += rs::WARP) {
            dst[i] = buf[i] + poison;
        }
    } else if (slot >= 0) {
        rs::bf16_t *dst = k_cache + (long long) slot * kv_dim + (long long) (h - heads) * d;
        for (int i = lane; i < d; i += rs::WARP) {
            dst[i] = rs::f32_to_bf16(buf[i] + poison);
        }
    }
}
