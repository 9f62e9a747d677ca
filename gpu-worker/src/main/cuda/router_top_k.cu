// router_top_k.cu — the MoE router of one layer after its logits: scores, expert selection and combine
// weights, one block per token. The logits themselves (the mlp.gate projection, fp32 accumulation) come
// from gemv / matmul, which spread the gate's E·D weights over many blocks with 16-byte loads (one block
// per token reading the whole gate would stream it through a single SM). Mirrors
// reference.GroupLimitedSigmoidRouter (V2, docs/MODEL.md §3.6) and reference.SoftmaxTopKRouter
// (v1, MODEL-V1.md §4.5), including their tie-breaking: among equal values the LOWER index wins
// (Router.topIndices), both for groups and for experts.
//
// Legend: T = tokens, D = hidden, E = experts, K = experts per token, G = expert groups,
// E/G = experts per group.
//
// V2 (scoring = 0, sigmoid, group-limited):
//   s_e = sigmoid(logit_e)                       unbiased scores (combine weights)
//   b_e = s_e + expert_bias_e                    (bias only when use_bias) — selection only
//   group score = top-2 sum of b in the group (the top-1 when E/G == 1)
//   keep the topk_group best groups; ids = the K best b among their experts, best first
//   w_k = s_{id_k} / (Σ_k s_{id_k} + 1e-20) when K > 1 (always, whatever norm_topk_prob), × routed_scaling_factor
// v1 (scoring = 1, softmax): p = softmax(logits) over all E (sum in double); ids = the K best p, best
//   first; w_k = p_{id_k} / Σ_k p_{id_k} (in double) when norm_topk_prob and K > 1, else p_{id_k}. No bias,
//   no groups, no scaling (n_group, topk_group, use_bias, routed_scaling_factor are ignored).
// round_logits_bf16 = 1 rounds each logit to bf16 before scoring, as v1's bf16 gate nn.Linear does in the
// HF code (Router.bf16Logits()); V2 passes 0 (fp32 router).
// NaN scores: never selected while another candidate exists (the reference's NaN behaviour is not
// reproduced); K distinct ids are always produced.
//
// Launch contract, router_top_k:
//   grid  (T, 1, 1), block (256, 1, 1), dynamic shared memory 0 (static ≈ 20 KB: 3.3 KB + moe_plan.cuh's tables)
//   host checks: 1 <= E <= 256, 1 <= K <= min(8, E); V2: 1 <= G <= 32, E % G == 0,
//                1 <= topk_group <= G, topk_group · E/G >= K
//   logits       const float* [T, E]   router logits: post-attention-normed hidden · mlp.gate.weightᵀ, fp32
//   expert_bias  const float* [E]      mlp.gate.expert_bias as fp32 (read only when use_bias)
//   topk_ids     int*         [T, K]   selected experts, best first
//   topk_weights float*       [T, K]   their combine weights, fp32
//   plan         int*         [3 + 3·E + T·K]  the experts' group plan (moe_experts.cu), built from topk_ids by the
//                                      block that finishes last; null: no plan (moe_group builds it)
//   done         unsigned*    [1]      blocks finished; 0 when the kernel starts, and 0 again when it ends (the
//                                      last block resets it), so a CUDA graph can replay the launch as captured
//   tokens, experts, top_k, n_group, topk_group, scoring, use_bias, round_logits_bf16,
//   norm_topk_prob   ints as named
//   routed_scaling_factor float
#include <limits.h>

#include "common.cuh"
#include "moe_plan.cuh"

namespace {

constexpr int THREADS = 256;
constexpr int WARPS = THREADS / rs::WARP;
constexpr int MAX_E = 256;
constexpr int MAX_K = 8;
constexpr int MAX_GROUPS = 32;
constexpr int PER_LANE = MAX_E / rs::WARP; // experts per lane in the selection warp

} // namespace

extern "C" __global__ void __launch_bounds__(THREADS, 2)
router_top_k(const float *__restrict__ logits, const float *__restrict__ expert_bias,
             int *__restrict__ topk_ids, float *__restrict__ topk_weights, int *__restrict__ plan, unsigned *__restrict__ done,
             int tokens, int experts, int top_k,
             int n_group, int topk_group, int scoring, int use_bias, int round_logits_bf16, int norm_topk_prob,
             float routed_scaling_factor) {
    __shared__ float score[MAX_E];        // (E) V2: unbiased sigmoid; v1: softmax probability
    __shared__ float choice[MAX_E];       // (E) what selection ranks: V2 biased score; v1 = score
    __shared__ float group_score[MAX_GROUPS]; // (G)
    __shared__ int group_kept[MAX_GROUPS];    // (G) 1 = experts of this group may be selected
    __shared__ int ids[MAX_K];                // (K)
    __shared__ float red[WARPS];
    __shared__ double red_d[WARPS];

    const int t = blockIdx.x;
    if (t >= tokens) {
        return;
    }
    const int tid = threadIdx.x;
    const int lane = tid % rs::WARP;
    const int warp = tid / rs::WARP;

    // 1. logits (v1: rounded to bf16, as its bf16 gate nn.Linear outputs them)
    for (int e = tid; e < experts; e += THREADS) {
        const float l = logits[(long long) t * experts + e];
        score[e] = round_logits_bf16 ? rs::round_bf16(l) : l; // logits for now
    }
    __syncthreads();

    // 2. scores
    if (scoring == 0) {
        if (tid < experts) {
            const float s = 1.f / (1.f + expf(-score[tid]));
            score[tid] = s;
            choice[tid] = s + (use_bias ? expert_bias[tid] : 0.f);
        }
        __syncthreads();
        // group score: sum of the two best biased scores (the best alone for one-expert groups). Warp w takes groups
        // w, w + 8, ...: each lane keeps the top two of its experts, then the warp merges the pairs; the two largest
        // values of a group do not depend on the merge order, and first + second is added once, as the reference does
        const int per_group = experts / n_group;
        for (int g = warp; g < n_group; g += WARPS) {
            float first = -INFINITY;
            float second = -INFINITY;
            for (int e = g * per_group + lane; e < (g + 1) * per_group; e += rs::WARP) {
                const float s = choice[e];
                if (s > first) {
                    second = first;
                    first = s;
                } else if (s > second) {
                    second = s;
                }
            }
#pragma unroll
            for (int m = 16; m > 0; m >>= 1) {
                const float of = __shfl_xor_sync(rs::FULL_MASK, first, m);
                const float os = __shfl_xor_sync(rs::FULL_MASK, second, m);
                // the top two of {first, second, of, os}, first >= second and of >= os
                const float hi = fmaxf(first, of);
                const float lo = fmaxf(fminf(first, of), fmaxf(second, os));
                first = hi;
                second = lo;
            }
            if (lane == 0) {
                group_score[g] = per_group >= 2 ? first + second : first;
            }
        }
        __syncthreads();
        if (warp == 0) {
            // Router.topIndices(groupScore, topk_group): largest first, lower index wins ties; a NaN group ranks last
            float v = lane < n_group ? group_score[lane] : -INFINITY;
            v = v != v ? -INFINITY : v;
            bool kept = false;
            for (int r = 0; r < topk_group; r++) {
                float best_v = kept || lane >= n_group ? -INFINITY : v;
                int best_i = kept || lane >= n_group ? INT_MAX : lane;
                rs::warp_argmax(best_v, best_i);
                kept = kept || best_i == lane;
            }
            group_kept[lane] = kept ? 1 : 0;
        }
        __syncthreads();
    } else {
        // softmax over all E: max-subtracted, exp in fp32, sum in double, p = e · (float)(1/sum)
        const float v = tid < experts ? score[tid] : -INFINITY;
        const float mx = rs::block_max(v, red);
        const float ex = tid < experts ? expf(v - mx) : 0.f;
        double sum = rs::warp_sum((double) ex);
        if (lane == 0) {
            red_d[warp] = sum;
        }
        __syncthreads();
        sum = 0.0;
        for (int w = 0; w < WARPS; w++) {
            sum += red_d[w];
        }
        const float inv = (float) (1.0 / sum);
        if (tid < experts) {
            score[tid] = ex * inv;
            choice[tid] = ex * inv;
        }
        if (tid < MAX_GROUPS) {
            group_kept[tid] = 1;
        }
        n_group = 1; // every expert is in group 0, which is kept
        __syncthreads();
    }

    // 3. top-K by `choice` among kept groups: warp 0, K rounds of a warp argmax; lane owns e = lane + 32·j
    if (warp == 0) {
        const int per_group = experts / n_group;
        float cand[PER_LANE]; // this lane's experts e = lane + 32·j, in registers for the K rounds
        unsigned taken = 0;   // bit j: expert lane + 32·j selected already, or not selectable (outside E, group dropped)
#pragma unroll
        for (int j = 0; j < PER_LANE; j++) {
            const int e = lane + rs::WARP * j;
            const bool selectable = e < experts && group_kept[e / per_group];
            const float v = selectable ? choice[e] : -INFINITY;
            cand[j] = v != v ? -INFINITY : v; // NaN ranks last
            taken |= selectable ? 0u : 1u << j;
        }
        for (int k = 0; k < top_k; k++) {
            float best_v = -INFINITY;
            int best_i = INT_MAX;
#pragma unroll
            for (int j = 0; j < PER_LANE; j++) {
                const int e = lane + rs::WARP * j;
                if (!(taken & (1u << j)) && (cand[j] > best_v || (cand[j] == best_v && e < best_i))) {
                    best_v = cand[j];
                    best_i = e;
                }
            }
            rs::warp_argmax(best_v, best_i);
            if (best_i % rs::WARP == lane) {
                taken |= 1u << (best_i / rs::WARP);
            }
            if (lane == 0) {
                ids[k] = best_i;
            }
        }
    }
    __syncthreads();

    // 4. combine weights, in k order as the reference
    if (tid == 0) {
        int *out_ids = topk_ids + (long long) t * top_k;
        float *out_w = topk_weights + (long long) t * top_k;
        if (scoring == 0) {
            float sum = 0.f;
            for (int k = 0; k < top_k; k++) {
                sum += score[ids[k]];
            }
            for (int k = 0; k < top_k; k++) {
                const float w = score[ids[k]];
                const float r = top_k > 1 ? w / (sum + 1e-20f) : w;
                out_w[k] = r * routed_scaling_factor;
                out_ids[k] = ids[k];
            }
        } else {
            double sum = 0.0;
            for (int k = 0; k < top_k; k++) {
                sum += score[ids[k]];
            }
            for (int k = 0; k < top_k; k++) {
                const float w = score[ids[k]];
                out_w[k] = norm_topk_prob && top_k > 1 ? (float) (w / sum) : w;
                out_ids[k] = ids[k];
            }
        }
    }

    // 5. the experts' group plan (moe_plan.cuh), by the block that finishes last: the ids of every token are
    //    written by then
    if (plan != nullptr) {
        __shared__ int last;
        __syncthreads(); // thread 0 wrote this token's ids; the others wait for it
        if (tid == 0) {
            __threadfence(); // this token's ids reach L2 before the count says they are there
            last = atomicAdd(done, 1u) == (unsigned) tokens - 1;
        }
        __syncthreads();
        if (last) {
            __threadfence(); // the other blocks' ids are read after their counts, through L2 (build_plan)
            rs_moe::build_plan(topk_ids, plan, tokens, top_k, experts);
            if (tid == 0) {
                *done = 0; // as the launch found it: the next launch (a CUDA graph's replay too) counts from 0
            }
        }
    }
}
