package io.ringserve.worker.reference;

import io.ringserve.model.config.BailingMoeV2Config;

/**
 * The V2 router ({@code BailingMoeV2Gate}): fp32 logits → sigmoid scores → expert bias added for selection
 * only → group-limited top-k → weights from the UNBIASED scores, renormalised, times
 * {@code routed_scaling_factor}. docs/MODEL.md §3.6.
 *
 * <p>Legend: E = experts, G = groups, K = experts per token.
 */
public final class GroupLimitedSigmoidRouter implements Router {
    private final int numExperts;
    private final int nGroup;
    private final int topkGroup;
    private final int topK;
    private final float routedScalingFactor;

    public GroupLimitedSigmoidRouter(BailingMoeV2Config c) {
        this.numExperts = c.numExperts();
        this.nGroup = c.nGroup();
        this.topkGroup = c.topkGroup();
        this.topK = c.numExpertsPerTok();
        this.routedScalingFactor = (float) c.routedScalingFactor();
    }

    /** Routes in descending biased-score order. */
    @Override
    public Route route(float[] logits, int off, float[] expertBias) {
        float[] scores = new float[numExperts]; // (E) unbiased sigmoid scores
        float[] biased = new float[numExperts]; // (E) scores + expert_bias, used only to choose
        for (int e = 0; e < numExperts; e++) {
            scores[e] = (float) (1.0 / (1.0 + Math.exp(-logits[off + e])));
            biased[e] = scores[e] + (expertBias == null ? 0f : expertBias[e]);
        }
        int[] ids = groupLimitedTopK(biased);
        float[] weights = new float[topK];
        float sum = 0;
        for (int k = 0; k < topK; k++) {
            weights[k] = scores[ids[k]];
            sum += weights[k];
        }
        if (topK > 1) {
            // the reference renormalises whenever top_k > 1, whatever norm_topk_prob says
            for (int k = 0; k < topK; k++) {
                weights[k] = weights[k] / (sum + 1e-20f);
            }
        }
        for (int k = 0; k < topK; k++) {
            weights[k] *= routedScalingFactor;
        }
        return new Route(ids, weights);
    }

    @Override
    public boolean usesExpertBias() {
        return true;
    }

    @Override
    public boolean bf16Logits() {
        return false;
    }

    /**
     * Keeps the {@code topk_group} groups whose two best biased scores sum highest, then the {@code top_k}
     * best experts inside them, best first (ties: lower index first).
     *
     * @param biased (E)
     * @return (K) expert ids
     */
    int[] groupLimitedTopK(float[] biased) {
        int perGroup = numExperts / nGroup;
        float[] groupScore = new float[nGroup]; // (G) sum of the group's top 2
        for (int g = 0; g < nGroup; g++) {
            float first = Float.NEGATIVE_INFINITY;
            float second = Float.NEGATIVE_INFINITY;
            for (int e = g * perGroup; e < (g + 1) * perGroup; e++) {
                float s = biased[e];
                if (s > first) {
                    second = first;
                    first = s;
                } else if (s > second) {
                    second = s;
                }
            }
            groupScore[g] = perGroup >= 2 ? first + second : first;
        }
        int[] keptGroups = Router.topIndices(groupScore, topkGroup, null);
        boolean[] allowed = new boolean[numExperts];
        for (int g : keptGroups) {
            for (int e = g * perGroup; e < (g + 1) * perGroup; e++) {
                allowed[e] = true;
            }
        }
        return Router.topIndices(biased, topK, allowed);
    }
}
