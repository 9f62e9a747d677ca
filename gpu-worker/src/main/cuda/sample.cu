// sample.cu — next-token choice on the GPU for a batch of logits rows, so only the sampled ids (and their
// logprobs) are copied back. Mirrors engine.Sampler:
//   greedy (temperature 0): argmax, the LOWEST id wins a tie — exactly Sampler.argmax (a NaN at id 0 wins,
//     a NaN elsewhere never does, as its `>` loop behaves);
//   random: Sampler.Random's truncations in its order — candidates sorted by descending logit (lower id
//     first among equal logits); top-k keeps the first k; probabilities p ∝ exp(logit/T − max) over those;
//     top-p keeps the shortest prefix whose cumulative p reaches top_p; min-p keeps, inside that prefix,
//     the tokens with p >= min_p · p_max; then one draw from what is left, renormalised.
// The draw uses a counter-based RNG (Philox4x32-10 keyed by the row's seed, counter = (token id, step)),
// through the Gumbel-max trick: argmax over kept ids of (logit/T − max) + Gumbel(u_id) is an exact sample
// of the renormalised distribution. Draws therefore differ from the host Sampler's SplittableRandom, but
// the same (seed, step, logits) always gives the same token, and a CUDA graph can replay it: seeds and
// steps live in device buffers the host updates before each replay.
// Penalties (Sampler.Penalties) run first in apply_penalties, from per-sequence token tables that
// count_tokens keeps up to date on the device after each step.
//
// How the truncations are found without sorting V = 157K logits: each candidate has a distinct 64-bit key
// (order-preserving bits of its logit in the high half, 0xFFFFFFFF − id in the low half), so "descending
// key" is exactly the Sampler's order. A radix select over the key (8 passes of 8 bits, histograms in
// shared memory) finds the k-th key (top-k) and, with mass histograms instead of counts, the key at which
// the cumulative probability reaches top_p (top-p). Masses are fixed-point 64-bit integers
// (p · 2^40), so the atomics add exactly and the result does not depend on thread timing. min-p is a plain
// threshold on exp(z − z_max). The random path's later passes each read the whole row in one block.
//
// Two phases. A whole-row pass in one block of one SM (630 KB per row for V = 157K, 4-byte loads) would
// cost tens of µs per decode step, so everything that needs only one pass over a row is computed first by
// sample_partials, spread over C = ceil(V / 2048) blocks per row (77 for V = 157,184), each reading its
// 2048-logit chunk once with 16-byte loads (two float4 per thread, a scalar head up to the first 16-byte
// aligned logit and a scalar tail), and writing one SamplePartial per (row, chunk):
//   key      the chunk's largest key: the greedy key (value rank, lowest id; Sampler.argmax's NaN rule) for a
//            greedy row, the sort key for a random row (its first candidate, whose logit gives z_max)
//   raw_max  max of the chunk's raw logits (fmaxf: NaN ignored, −inf when it has no other value)
//   raw_sum  Σ exp(raw − s) over the chunk, s = raw_max, or 0 when raw_max = −inf (a NaN stays a NaN)
// sample_tokens then takes max(key) over the row's C partials (exact and order-free: keys are distinct
// integers): the greedy id, or the random path's first candidate; and the logprob's log-sum-exp as
// M = max(raw_max), Σ_c raw_sum_c · exp(s_c − M) in double, in a fixed order (no float atomics). The id is
// exactly what one pass over the row picks; the logprob equals the one-pass Σ exp(raw − M) up to fp32
// rounding (exp(raw − s)·exp(s − M) against exp(raw − M), and raw_sum rounded to fp32), with the same NaN
// and infinity behaviour (a NaN or +inf raw logit, or a row of −inf only, gives a NaN logprob).
// Why C = ceil(V / 2048) and not a per-step count: graphs replay fixed grids, and a fixed chunk keeps the
// merge order, hence the logprob's rounding, independent of the batch. 2048 logits per 256-thread block puts
// the whole row's loads in flight at once (77 blocks ≤ 132 SMs at batch 1, several blocks per SM beyond) while
// each block still has 8 KB to amortise its two block reductions; C <= 1024 up to V = 2M keeps the merge at
// one partial per thread of sample_tokens (more would still be correct, just looped).
//
// Legend: B = rows (sequences in the step), V = vocab, C = chunks per row = ceil(V / 2048), S = rows of the
// per-sequence penalty tables.
//
// Launch contract, sample_partials (first, on the same stream; its partials feed one sample_tokens launch):
//   grid (C, B, 1), block (256, 1, 1), dynamic shared memory 0 (static ≈ 0.2 KB)
//   logits       const float* [B, V]  as for sample_tokens; any 4-byte aligned address
//   raw_logits   const float* [B, V]  as for sample_tokens, or null when no logprobs are wanted (raw_max and
//                                     raw_sum are then not written); may equal logits, any 4-byte alignment
//   temperature  const float* [B]     <= 0: greedy key, else sort key
//   partials     SamplePartial* [B, C] (16 bytes each, 16-byte aligned): written for every (row, chunk)
//   rows, vocab  ints (B, V)
//
// Launch contract, sample_tokens:
//   grid (B, 1, 1), block (1024, 1, 1), dynamic shared memory 0 (static ≈ 2.7 KB)
//   logits       const float* [B, V]  (penalised) logits to choose from, fp32
//   raw_logits   const float* [B, V]  logits as the model produced them, for the logprob (may equal logits);
//                                     only raw[id] is read (the rest comes from the partials)
//   partials     const SamplePartial* [B, C] from sample_partials over the same logits, temperature and
//                                     (when out_logprobs is not null) raw_logits
//   temperature  const float* [B]     <= 0: greedy
//   top_k        const int*   [B]     0 (or >= V): all
//   top_p        const float* [B]     >= 1: all
//   min_p        const float* [B]     0: none
//   seeds        const unsigned long long* [B]  RNG key of the row (the request's seed)
//   steps        const unsigned long long* [B]  RNG counter: a different value for every draw of a sequence
//                                               (e.g. tokens generated so far)
//   out_ids      int*         [B]     sampled token ids
//   out_logprobs float*       [B]     raw_logits[id] − logsumexp(raw_logits) (null: not written)
//   rows, vocab  ints (B, V)
//
// Launch contract, apply_penalties (Sampler.Penalties: repetition HF style on every token in prompt or
// output — divide a positive logit, multiply a negative one; presence once and frequency per occurrence on
// generated tokens):
//   grid (ceil(V / 256), B, 1), block (256, 1, 1), dynamic shared memory 0
//   logits_in     const float*   [B, V]
//   logits_out    float*         [B, V]   may alias logits_in
//   penalty_rows  const int*     [B]      the row of the tables below that is this batch row's sequence; < 0: copy
//   prompt_mask   const uint8*   [S, V]   1 where the token occurs in the sequence's prompt
//   output_counts const int*     [S, V]   occurrences of the token among the sequence's generated tokens
//   repetition    const float*   [B]      1: none
//   presence      const float*   [B]      0: none
//   frequency     const float*   [B]      0: none
//   rows, vocab   ints
//
// Launch contract, count_tokens (after sample_tokens, before the next step):
//   grid (ceil(B / 256), 1, 1), block (256, 1, 1), dynamic shared memory 0
//   ids const int* [B]; penalty_rows const int* [B] (< 0: skip); output_counts int* [S, V] (+1 at [row, id]);
//   rows, vocab ints
#include <limits.h>

#include "common.cuh"
#include "vec.cuh"

/** One (row, chunk) of sample_partials' output; see the header. */
struct __align__(16) SamplePartial {
    unsigned long long key; // largest greedy key (greedy row) or sort key (random row) of the chunk
    float raw_max;          // max of the chunk's raw logits (NaN ignored), -inf if none
    float raw_sum;          // Σ exp(raw − (raw_max, or 0 when raw_max = −inf)) over the chunk
};

namespace {

constexpr int THREADS = 1024;
constexpr int WARPS = THREADS / rs::WARP;
constexpr int BINS = 256;
constexpr float MASS_ONE = 1099511627776.0f; // 2^40: fixed-point unit of probability mass

constexpr int PART_THREADS = 256;
constexpr int PART_WARPS = PART_THREADS / rs::WARP;
constexpr int CHUNK = 2048;                             // logits per sample_partials block (C = ceil(V / CHUNK))
constexpr int CHUNK_VECS = CHUNK / (4 * PART_THREADS);  // float4 loads per thread
static_assert(CHUNK % (4 * PART_THREADS) == 0, "a chunk is whole float4 rounds of the block");

__device__ __forceinline__ int num_chunks(int vocab) {
    return (vocab + CHUNK - 1) / CHUNK;
}

/** Float bits mapped so that unsigned order = float order (−0 folded into +0; NaN above +inf). */
__device__ __forceinline__ unsigned ordered_bits(float f) {
    if (f != f) {
        return 0xffffffffu; // every NaN, whatever its sign bit, above +inf (as Float.compare orders them)
    }
    unsigned u = __float_as_uint(f + 0.0f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/** The Sampler's order as one distinct key: larger key = earlier candidate. */
__device__ __forceinline__ unsigned long long sort_key(float logit, int id) {
    return ((unsigned long long) ordered_bits(logit) << 32) | (unsigned long long) (0xffffffffu - (unsigned) id);
}

__device__ __forceinline__ int key_id(unsigned long long key) {
    return (int) (0xffffffffu - (unsigned) (key & 0xffffffffu));
}

/**
 * Sampler.argmax's order as one key (the largest key wins): value rank, then the lowest id. A NaN ranks below
 * everything except at id 0, where it ranks above everything (the sequential loop never leaves a NaN it
 * starts on).
 */
__device__ __forceinline__ unsigned long long greedy_key(float v, int id) {
    const unsigned rank = v != v ? (id == 0 ? 0xffffffffu : 0u) : ordered_bits(v);
    return ((unsigned long long) rank << 32) | (unsigned long long) (0xffffffffu - (unsigned) id);
}

__device__ __forceinline__ unsigned long long max_u64(unsigned long long a, unsigned long long b) {
    return a > b ? a : b;
}

/** 4 floats from a 16-byte aligned address, through the read-only path. */
__device__ __forceinline__ void load4(const float *p, float (&f)[4]) {
    const rs::vec16 v = rs::load16(p);
    f[0] = __uint_as_float(v.x);
    f[1] = __uint_as_float(v.y);
    f[2] = __uint_as_float(v.z);
    f[3] = __uint_as_float(v.w);
}

/** Block-wide max of 64-bit keys (every thread gets it). scratch: WARPS entries. */
__device__ __forceinline__ unsigned long long block_max_u64(unsigned long long v, unsigned long long *scratch) {
    for (int m = 16; m > 0; m >>= 1) {
        const unsigned long long o = __shfl_xor_sync(rs::FULL_MASK, v, m);
        v = o > v ? o : v;
    }
    __syncthreads();
    if (threadIdx.x % rs::WARP == 0) {
        scratch[threadIdx.x / rs::WARP] = v;
    }
    __syncthreads();
    unsigned long long r = scratch[0];
    for (int w = 1; w < WARPS; w++) {
        r = scratch[w] > r ? scratch[w] : r;
    }
    return r;
}

/** Philox4x32-10 (Salmon et al. 2011): 4 random words from a 128-bit counter and a 64-bit key. */
__device__ __forceinline__ unsigned philox_x(unsigned c0, unsigned c1, unsigned c2, unsigned c3, unsigned k0, unsigned k1) {
#pragma unroll
    for (int r = 0; r < 10; r++) {
        const unsigned lo0 = c0 * 0xD2511F53u;
        const unsigned hi0 = __umulhi(c0, 0xD2511F53u);
        const unsigned lo1 = c2 * 0xCD9E8D57u;
        const unsigned hi1 = __umulhi(c2, 0xCD9E8D57u);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c0;
}

/** Uniform in (0, 1) for token `id` of draw `step` of the stream `seed`. */
__device__ __forceinline__ float uniform01(unsigned long long seed, unsigned long long step, int id) {
    const unsigned x = philox_x((unsigned) id, (unsigned) step, (unsigned) (step >> 32), 0x52494E47u /* "RING" */,
                                (unsigned) seed, (unsigned) (seed >> 32));
    // 23 bits so that every value, and k + 0.5, is exact in fp32: u in [2^-24, 1 - 2^-24], never 0 or 1
    // (u = 1 would make the Gumbel noise +inf)
    return ((float) (x >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

struct SelectSmem {
    unsigned long long hist[BINS]; // counts or fixed-point masses of the current digit
    unsigned long long prefix;     // key bits chosen so far
    unsigned long long rest;       // rank still to skip (count select) or mass above the prefix (mass select)
    int found;                     // mass select: 0 when the whole candidate set stays under the target
};

/**
 * Radix select over the distinct 64-bit keys of one row, MSB digit first.
 *   by_mass = false: the key of rank `target` (1 = largest) among all V candidates.
 *   by_mass = true:  among candidates with key >= floor_key, the largest key K such that the mass of keys
 *                    >= K reaches `target` (fixed point); returns floor_key when the total stays below it.
 * Mass of candidate i = (unsigned long long)(exp(z_i − z_max) · mass_scale), z_i = logit_i · inv_temp.
 */
__device__ unsigned long long radix_select(SelectSmem &sm, const float *__restrict__ row, int vocab, bool by_mass,
                                          unsigned long long target, unsigned long long floor_key, float inv_temp, float z_max,
                                          float mass_scale) {
    const int tid = threadIdx.x;
    if (tid == 0) {
        sm.prefix = 0;
        sm.rest = 0;
        sm.found = 1;
    }
    for (int level = 0; level < 8; level++) {
        const int shift = 56 - 8 * level;
        const unsigned long long high_mask = level == 0 ? 0ull : ~0ull << (shift + 8);
        for (int b = tid; b < BINS; b += THREADS) {
            sm.hist[b] = 0;
        }
        __syncthreads();
        const unsigned long long prefix = sm.prefix;
        for (int i = tid; i < vocab; i += THREADS) {
            const float logit = row[i];
            const unsigned long long key = sort_key(logit, i);
            if ((key & high_mask) != prefix || (by_mass && key < floor_key)) {
                continue;
            }
            unsigned long long add = 1;
            if (by_mass) {
                add = (unsigned long long) (expf(logit * inv_temp - z_max) * mass_scale);
            }
            atomicAdd(&sm.hist[(key >> shift) & (BINS - 1)], add);
        }
        __syncthreads();
        if (tid == 0) {
            unsigned long long rest = sm.rest;
            int chosen = -1;
            for (int b = BINS - 1; b >= 0; b--) {
                const unsigned long long h = sm.hist[b];
                if (by_mass ? rest + h >= target : h >= target - rest) {
                    chosen = b;
                    break;
                }
                rest += h;
            }
            if (chosen < 0) {
                // only possible for the mass select at level 0: the candidates never reach top_p
                sm.found = 0;
                chosen = 0;
            }
            sm.rest = rest;
            sm.prefix = prefix | ((unsigned long long) chosen << shift);
        }
        __syncthreads();
        if (!sm.found) {
            return floor_key;
        }
    }
    return sm.prefix;
}

} // namespace

extern "C" __global__ void __launch_bounds__(PART_THREADS)
sample_partials(const float *__restrict__ logits, const float *__restrict__ raw_logits, const float *__restrict__ temperature,
                SamplePartial *__restrict__ partials, int rows, int vocab) {
    __shared__ unsigned long long red_key[PART_WARPS];
    __shared__ float red_max[PART_WARPS];
    __shared__ double red_sum[PART_WARPS];

    const int c = blockIdx.x;
    const int b = blockIdx.y;
    const int lo = c * CHUNK;
    if (b >= rows || lo >= vocab) {
        return;
    }
    const int hi = min(lo + CHUNK, vocab);
    const int tid = threadIdx.x;
    const int lane = tid % rs::WARP;
    const int warp = tid / rs::WARP;
    const float *row = logits + (long long) b * vocab;                                        // (V)
    const float *raw = raw_logits == nullptr ? nullptr : raw_logits + (long long) b * vocab; // (V) or null
    const bool same = raw == row;
    const bool greedy = !(temperature[b] > 0.f);

    // [lo, a): scalar head up to the first 16-byte aligned logit; [a, tail): nvec float4; [tail, hi): scalar tail
    const int head = min(hi - lo, (int) ((0u - (unsigned) (reinterpret_cast<uintptr_t>(row + lo) >> 2)) & 3u));
    const int a = lo + head;
    const int nvec = (hi - a) / 4; // <= CHUNK_VECS · PART_THREADS
    const int tail = a + 4 * nvec;
    const int nscalar = head + (hi - tail); // <= 6
    // raw shares logits' 16-byte phase (the usual case: the same buffer, or two buffers of the same shape)
    const bool raw_vec = raw != nullptr && ((reinterpret_cast<uintptr_t>(raw) - reinterpret_cast<uintptr_t>(row)) & 15u) == 0;

    unsigned long long best = 0;
    float rv[4 * CHUNK_VECS + 1]; // this thread's raw logits; −inf where it has none (exp(−inf − s) adds 0)
#pragma unroll
    for (int k = 0; k < CHUNK_VECS; k++) {
        const int j = tid + k * PART_THREADS;
        float x[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        float r[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        if (j < nvec) {
            const int i = a + 4 * j;
            load4(row + i, x);
#pragma unroll
            for (int e = 0; e < 4; e++) {
                best = max_u64(best, greedy ? greedy_key(x[e], i + e) : sort_key(x[e], i + e));
            }
            if (same) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    r[e] = x[e];
                }
            } else if (raw_vec) {
                load4(raw + i, r);
            } else if (raw != nullptr) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    r[e] = raw[i + e];
                }
            }
        }
#pragma unroll
        for (int e = 0; e < 4; e++) {
            rv[4 * k + e] = r[e];
        }
    }
    rv[4 * CHUNK_VECS] = -INFINITY;
    if (tid < nscalar) {
        const int i = tid < head ? lo + tid : tail + (tid - head);
        const float x = row[i];
        best = max_u64(best, greedy ? greedy_key(x, i) : sort_key(x, i));
        if (raw != nullptr) {
            rv[4 * CHUNK_VECS] = same ? x : raw[i];
        }
    }
    float mx = -INFINITY;
#pragma unroll
    for (int e = 0; e < 4 * CHUNK_VECS + 1; e++) {
        mx = fmaxf(mx, rv[e]);
    }

    // block max of the key and of the raw logits (fixed tree order; max is order-free anyway)
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) {
        best = max_u64(best, __shfl_xor_sync(rs::FULL_MASK, best, m));
        mx = fmaxf(mx, __shfl_xor_sync(rs::FULL_MASK, mx, m));
    }
    if (lane == 0) {
        red_key[warp] = best;
        red_max[warp] = mx;
    }
    __syncthreads();
    best = red_key[0];
    mx = red_max[0];
    for (int w = 1; w < PART_WARPS; w++) {
        best = max_u64(best, red_key[w]);
        mx = fmaxf(mx, red_max[w]);
    }
    SamplePartial *out = partials + (long long) b * num_chunks(vocab) + c; // (row b, chunk c)
    if (raw == nullptr) {
        if (tid == 0) {
            out->key = best;
        }
        return;
    }

    // Σ exp(raw − s) over the chunk, in double per thread, then a fixed tree (deterministic)
    const float shift = mx == -INFINITY ? 0.f : mx;
    double sum = 0.0;
#pragma unroll
    for (int e = 0; e < 4 * CHUNK_VECS + 1; e++) {
        sum += (double) expf(rv[e] - shift);
    }
    sum = rs::warp_sum(sum);
    if (lane == 0) {
        red_sum[warp] = sum;
    }
    __syncthreads();
    if (tid == 0) {
        double total = 0.0;
        for (int w = 0; w < PART_WARPS; w++) {
            total += red_sum[w];
        }
        SamplePartial p;
        p.key = best;
        p.raw_max = mx;
        p.raw_sum = (float) total;
        *out = p;
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
sample_tokens(const float *__restrict__ logits, const float *__restrict__ raw_logits, const SamplePartial *__restrict__ partials,
              const float *__restrict__ temperature, const int *__restrict__ top_k, const float *__restrict__ top_p,
              const float *__restrict__ min_p, const unsigned long long *__restrict__ seeds, const unsigned long long *__restrict__ steps,
              int *__restrict__ out_ids, float *__restrict__ out_logprobs, int rows, int vocab) {
    __shared__ SelectSmem sm;
    __shared__ unsigned long long red_u64[WARPS];
    __shared__ float red_f[WARPS];
    __shared__ double red_d[WARPS];

    const int b = blockIdx.x;
    if (b >= rows) {
        return;
    }
    const int tid = threadIdx.x;
    const float *row = logits + (long long) b * vocab; // (V)
    const int chunks = num_chunks(vocab);
    const SamplePartial *part = partials + (long long) b * chunks; // (C)
    const float temp = temperature[b];
    int chosen;

    // the row's largest key from its chunks' partials: the greedy key for a greedy row (Sampler.argmax), the
    // sort key (the first candidate) for a random row
    unsigned long long best = 0;
    for (int c = tid; c < chunks; c += THREADS) {
        best = max_u64(best, part[c].key);
    }
    const unsigned long long first_key = block_max_u64(best, red_u64);

    if (!(temp > 0.f)) {
        chosen = key_id(first_key);
    } else {
        const float inv_temp = 1.f / temp;
        const int k = top_k[b];
        const float p = top_p[b];
        const float mp = min_p[b];

        // z_max = the first candidate's logit / T
        const float z_max = row[key_id(first_key)] * inv_temp;

        // top-k: candidates with key >= the k-th key
        unsigned long long floor_key = 0;
        if (k > 0 && k < vocab) {
            floor_key = radix_select(sm, row, vocab, false, (unsigned long long) k, 0, inv_temp, z_max, 0.f);
        }
        // top-p over the top-k candidates' renormalised probabilities
        if (p < 1.f) {
            float part = 0.f;
            for (int i = tid; i < vocab; i += THREADS) {
                const float logit = row[i];
                if (sort_key(logit, i) >= floor_key) {
                    part += expf(logit * inv_temp - z_max);
                }
            }
            const float total = rs::block_sum(part, red_f); // >= 1: the first candidate contributes exp(0)
            const float mass_scale = MASS_ONE / total;
            const unsigned long long target = (unsigned long long) ((double) p * (double) MASS_ONE);
            floor_key = radix_select(sm, row, vocab, true, target, floor_key, inv_temp, z_max, mass_scale);
        }
        // min-p, then the Gumbel-max draw over what is kept
        const unsigned long long seed = seeds[b];
        const unsigned long long step = steps[b];
        float best_score = -INFINITY;
        int best_id = INT_MAX;
        for (int i = tid; i < vocab; i += THREADS) {
            const float logit = row[i];
            if (sort_key(logit, i) < floor_key) {
                continue;
            }
            const float zr = logit * inv_temp - z_max; // <= 0
            if (mp > 0.f && !(expf(zr) >= mp)) {
                continue;
            }
            const float u = uniform01(seed, step, i);
            const float score = zr - logf(-logf(u));
            if (score > best_score || (score == best_score && i < best_id)) {
                best_score = score;
                best_id = i;
            }
        }
        rs::warp_argmax(best_score, best_id);
        __syncthreads();
        if (tid % rs::WARP == 0) {
            red_f[tid / rs::WARP] = best_score;
            red_u64[tid / rs::WARP] = (unsigned long long) best_id;
        }
        __syncthreads();
        float bs = red_f[0];
        int bi = (int) red_u64[0];
        for (int w = 1; w < WARPS; w++) {
            const float s = red_f[w];
            const int id = (int) red_u64[w];
            if (s > bs || (s == bs && id < bi)) {
                bs = s;
                bi = id;
            }
        }
        // no finite score at all (e.g. NaN logits): fall back to the first candidate
        chosen = bi == INT_MAX ? key_id(first_key) : bi;
    }

    // logprob of the chosen id under the raw logits: raw[id] − (M + log Σ exp(raw − M)), the sum merged from
    // the chunks' (raw_max, raw_sum): Σ_c raw_sum_c · exp(s_c − M), s_c = raw_max_c or 0 when that is −inf
    if (out_logprobs != nullptr) {
        const float *raw = raw_logits + (long long) b * vocab; // (V)
        float mx = -INFINITY;
        for (int c = tid; c < chunks; c += THREADS) {
            mx = fmaxf(mx, part[c].raw_max);
        }
        mx = rs::block_max(mx, red_f);
        double sum = 0.0;
        for (int c = tid; c < chunks; c += THREADS) {
            const float cm = part[c].raw_max;
            const float shift = cm == -INFINITY ? 0.f : cm;
            sum += (double) part[c].raw_sum * exp((double) shift - (double) mx);
        }
        sum = rs::warp_sum(sum);
        __syncthreads();
        if (tid % rs::WARP == 0) {
            red_d[tid / rs::WARP] = sum;
        }
        __syncthreads();
        if (tid == 0) {
            double total = 0.0;
            for (int w = 0; w < WARPS; w++) {
                total += red_d[w];
            }
            out_logprobs[b] = (float) ((double) raw[chosen] - ((double) mx + log(total)));
        }
    }
    if (tid == 0) {
        out_ids[b] = chosen;
    }
}

extern "C" __global__ void __launch_bounds__(256)
apply_penalties(const float *logits_in, float *logits_out, const int *__restrict__ penalty_rows,
                const unsigned char *__restrict__ prompt_mask, const int *__restrict__ output_counts,
                const float *__restrict__ repetition, const float *__restrict__ presence, const float *__restrict__ frequency,
                int rows, int vocab) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int b = blockIdx.y;
    if (i >= vocab || b >= rows) {
        return;
    }
    const long long o = (long long) b * vocab + i;
    float v = logits_in[o];
    const int r = penalty_rows[b];
    if (r >= 0) {
        const long long t = (long long) r * vocab + i;
        const int count = output_counts[t];
        const float rep = repetition[b];
        if ((prompt_mask[t] != 0 || count > 0) && rep != 1.f) {
            v = v > 0.f ? v / rep : v * rep;
        }
        if (count > 0) {
            v -= presence[b] + frequency[b] * (float) count;
        }
    }
    logits_out[o] = v;
}

extern "C" __global__ void __launch_bounds__(256)
count_tokens(const int *__restrict__ ids, const int *__restrict__ penalty_rows, int *__restrict__ output_counts, int rows, int vocab) {
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= rows) {
        return;
    }
    const int r = penalty_rows[b];
    const int id = ids[b];
    if (r >= 0 && id >= 0 && id < vocab) {
        atomicAdd(&output_counts[(long long) r * vocab + id], 1);
    }
}
