// moe_plan.cuh — the group plan of a MoE layer's routed experts (docs in moe_experts.cu: "Group plan"), built by
// one block from the (T, K) expert ids: moe_group (moe_experts.cu) runs it as a kernel of its own, router_top_k
// (router_top_k.cu) in the last of its blocks to finish, right after the ids are chosen, saving a launch per layer.
// Included, never compiled alone.
//
// Legend: T = tokens, K = experts per token, E = experts, TK = T·K slots.
#pragma once

#include "common.cuh"

namespace rs_moe {

constexpr int PLAN_THREADS = 256;                   // the block size build_plan needs
constexpr int PLAN_WARPS = PLAN_THREADS / rs::WARP;
constexpr int MAX_EXPERTS = 2048;                   // shared-memory tables of the plan
constexpr int TILE_M = 64;                          // slots per block row of the tensor-core expert kernels

/** Zeroes count[0, E), then calls f(s, e) for every slot s whose id e lies in [0, E) (ids read through L2). */
template <typename F>
__device__ __forceinline__ void each_slot(const int *topk_ids, int *count, int tk, int experts, F f) {
    for (int e = threadIdx.x; e < experts; e += PLAN_THREADS) {
        count[e] = 0;
    }
    __syncthreads();
    for (int s = threadIdx.x; s < tk; s += PLAN_THREADS) {
        const int e = __ldcg(topk_ids + s);
        if (e >= 0 && e < experts) {
            f(s, e);
        }
    }
}

/**
 * Writes the plan [3 + 3·E + TK] words for topk_ids (T, K). Called by every thread of a block of PLAN_THREADS
 * threads. The ids are read through L2 (ld.global.cg): in router_top_k other blocks of the same kernel wrote them.
 */
__device__ __forceinline__ void build_plan(const int *topk_ids, int *__restrict__ plan, int tokens, int top_k, int experts) {
    __shared__ int count[MAX_EXPERTS]; // slots per expert, then the fill cursor
    __shared__ int start[MAX_EXPERTS]; // first slot-list index of each expert's group
    __shared__ int warp_slots[PLAN_WARPS];
    __shared__ int warp_groups[PLAN_WARPS];
    __shared__ int warp_tiles[PLAN_WARPS];
    const int tk = tokens * top_k;
    int *slots = plan + 3 + 3 * experts;
    each_slot(topk_ids, count, tk, experts, [&](int, int e) { atomicAdd(&count[e], 1); });
    __syncthreads();

    // exclusive scan of the counts (slots) and of count > 0 (groups): thread i owns experts [i·per, (i+1)·per)
    const int per = (experts + PLAN_THREADS - 1) / PLAN_THREADS;
    const int e0 = min(experts, (int) threadIdx.x * per);
    const int e1 = min(experts, e0 + per);
    int my_slots = 0;
    int my_groups = 0;
    int my_tiles = 0;
    for (int e = e0; e < e1; e++) {
        my_slots += count[e];
        my_groups += count[e] > 0;
        my_tiles += (count[e] + TILE_M - 1) / TILE_M;
    }
    const int lane = threadIdx.x % rs::WARP;
    const int warp = threadIdx.x / rs::WARP;
    int inc_slots = my_slots;
    int inc_groups = my_groups;
    int inc_tiles = my_tiles;
    for (int o = 1; o < rs::WARP; o <<= 1) { // inclusive warp scans
        const int a = __shfl_up_sync(rs::FULL_MASK, inc_slots, o);
        const int b = __shfl_up_sync(rs::FULL_MASK, inc_groups, o);
        const int c = __shfl_up_sync(rs::FULL_MASK, inc_tiles, o);
        if (lane >= o) {
            inc_slots += a;
            inc_groups += b;
            inc_tiles += c;
        }
    }
    if (lane == rs::WARP - 1) {
        warp_slots[warp] = inc_slots;
        warp_groups[warp] = inc_groups;
        warp_tiles[warp] = inc_tiles;
    }
    __syncthreads();
    int slot_off = inc_slots - my_slots;
    int group_off = inc_groups - my_groups;
    int tile_off = inc_tiles - my_tiles;
    for (int w = 0; w < warp; w++) {
        slot_off += warp_slots[w];
        group_off += warp_groups[w];
        tile_off += warp_tiles[w];
    }
    for (int e = e0; e < e1; e++) {
        const int c = count[e];
        start[e] = slot_off;
        if (c > 0) {
            plan[1 + group_off] = e;
            plan[1 + experts + group_off] = slot_off;
            plan[2 + 2 * experts + group_off] = tile_off;
            group_off++;
            slot_off += c;
            tile_off += (c + TILE_M - 1) / TILE_M;
        }
    }
    if (threadIdx.x == PLAN_THREADS - 1) { // owns the last range: the totals
        plan[0] = group_off;
        plan[1 + experts + group_off] = slot_off;
        plan[2 + 2 * experts + group_off] = tile_off;
    }
    __syncthreads(); // every count has been read: reuse them as cursors
    each_slot(topk_ids, count, tk, experts, [&](int s, int e) { slots[start[e] + atomicAdd(&count[e], 1)] = s; });
}

} // namespace rs_moe
