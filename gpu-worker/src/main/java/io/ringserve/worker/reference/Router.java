package io.ringserve.worker.reference;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;

/**
 * The router of a MoE layer: from one token's router logits (the {@code mlp.gate} GEMM output) to the
 * experts it goes to and their combine weights. The two BailingMoe versions differ only here within the
 * MoE block:
 * <ul>
 *   <li>{@link GroupLimitedSigmoidRouter} (V2, docs/MODEL.md §3.6): sigmoid scores, expert bias for selection
 *       only, group-limited top-k, weights renormalised and scaled by {@code routed_scaling_factor};</li>
 *   <li>{@link SoftmaxTopKRouter} (v1, MODEL-V1.md §4.5): softmax over all experts, plain top-k,
 *       renormalised when {@code norm_topk_prob}; no bias, groups or scaling.</li>
 * </ul>
 *
 * <p>Legend: E = experts, K = experts per token.
 */
public sealed interface Router permits GroupLimitedSigmoidRouter, SoftmaxTopKRouter {

    /** The experts one token goes to, best first, and their combine weights. */
    record Route(int[] expertIds, float[] weights) {
    }

    /** The router a model's config calls for. */
    static Router of(ModelConfig config) {
        return switch (config) {
            case BailingMoeV2Config v2 -> new GroupLimitedSigmoidRouter(v2);
            case BailingMoeConfig v1 -> new SoftmaxTopKRouter(v1);
        };
    }

    /**
     * @param logits     router logits of one token, {@code logits[off .. off+E)}, fp32
     * @param expertBias (E) the layer's {@code mlp.gate.expert_bias}; null for routers that have none
     */
    Route route(float[] logits, int off, float[] expertBias);

    /** Whether the layer has an {@code mlp.gate.expert_bias} tensor for this router to read. */
    boolean usesExpertBias();

    /**
     * Whether the reference code rounds the router GEMM output to bf16 before scoring (v1: the gate is a
     * bf16 {@code nn.Linear}) rather than computing it in fp32 (V2). The float32 CPU engine computes it in
     * fp32 either way; a bf16 engine must round where this says so to pick the same experts near ties.
     */
    boolean bf16Logits();

    /** Indices of the k largest values (optionally among allowed ones), largest first, ties by lower index. */
    static int[] topIndices(float[] values, int k, boolean[] allowed) {
        int[] out = new int[k];
        boolean[] taken = new boolean[values.length];
        for (int i = 0; i < k; i++) {
            int best = -1;
            for (int j = 0; j < values.length; j++) {
                if (taken[j] || (allowed != null && !allowed[j])) {
                    continue;
                }
                if (best < 0 || values[j] > values[best]) {
                    best = j;
                }
            }
            taken[best] = true;
            out[i] = best;
        }
        return out;
    }
}
