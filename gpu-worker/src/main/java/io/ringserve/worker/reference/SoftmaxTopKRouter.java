package io.ringserve.worker.reference;

import io.ringserve.model.config.BailingMoeConfig;

/**
 * The v1 router ({@code BailingMoeGate}, revision 3 of {@code modeling_bailing_moe.py}; MODEL-V1.md §4.5):
 * {@code p = softmax_fp32(logits)} over all E experts → the K largest p (best first; ties: lower index) →
 * {@code w_j = p_j / Σ_sel p} when {@code norm_topk_prob} and K > 1 (no epsilon), else the raw p. No expert
 * bias, no groups, no {@code routed_scaling_factor}.
 *
 * <p>The softmax is taken over all E logits, max-subtracted, with the sum accumulated in double and the
 * probabilities rounded to float32 as {@code logits.softmax(dim=-1, dtype=torch.float32)} returns them;
 * the renormalisation then runs on those float32 probabilities.
 *
 * <p>Legend: E = experts, K = experts per token.
 */
public final class SoftmaxTopKRouter implements Router {
    private final int numExperts;
    private final int topK;
    private final boolean normTopkProb;

    public SoftmaxTopKRouter(BailingMoeConfig c) {
        this(c.numExperts(), c.numExpertsPerTok(), c.normTopkProb());
    }

    public SoftmaxTopKRouter(int numExperts, int topK, boolean normTopkProb) {
        this.numExperts = numExperts;
        this.topK = topK;
        this.normTopkProb = normTopkProb;
    }

    /** Routes in descending softmax-probability order; {@code expertBias} is ignored (v1 has none). */
    @Override
    public Route route(float[] logits, int off, float[] expertBias) {
        float[] p = new float[numExperts]; // (E) softmax probabilities, fp32
        System.arraycopy(logits, off, p, 0, numExperts);
        ReferenceOps.softmax(p, 0, numExperts);
        int[] ids = Router.topIndices(p, topK, null);
        float[] weights = new float[topK];
        double sum = 0;
        for (int k = 0; k < topK; k++) {
            weights[k] = p[ids[k]];
            sum += weights[k];
        }
        if (normTopkProb && topK > 1) {
            for (int k = 0; k < topK; k++) {
                weights[k] = (float) (weights[k] / sum);
            }
        }
        return new Route(ids, weights);
    }

    @Override
    public boolean usesExpertBias() {
        return false;
    }

    @Override
    public boolean bf16Logits() {
        return true;
    }
}
