package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.Kernel;
import jcuda.driver.CUstream;

/**
 * {@code router_top_k.cu}: the MoE router of one layer from its logits, one block per token: scores, group-limited
 * or plain top-k, combine weights. The logits (hidden · gateᵀ, fp32) come from {@link Matmul}, which spreads the
 * gate's weights over many blocks. Mirrors reference.GroupLimitedSigmoidRouter (V2) and reference.SoftmaxTopKRouter
 * (v1), ties to the lower index.
 *
 * <p>Legend: T = tokens, E = experts, K = experts per token, G = expert groups.
 */
public final class RouterTopK {
    public static final int MAX_EXPERTS = 256;
    public static final int MAX_TOP_K = 8;
    public static final int MAX_GROUPS = 32;
    private static final int THREADS = 256;
    private final Kernel kernel;

    /** How scores are made and experts chosen. */
    public enum Scoring {
        /** V2: sigmoid, expert bias for selection, group-limited top-k, renormalised × routed_scaling_factor. */
        SIGMOID_GROUP_LIMITED,
        /** v1: softmax over all experts, plain top-k, renormalised when norm_topk_prob. */
        SOFTMAX
    }

    /**
     * One layer's routing rules.
     *
     * @param groups              G (V2; 1 for v1)
     * @param topkGroup           groups kept (V2; 1 for v1)
     * @param roundLogitsToBf16   round each logit to bf16 first (v1's bf16 gate, Router.bf16Logits())
     * @param normTopkProb        v1: renormalise the K probabilities (V2 always renormalises when K > 1)
     * @param routedScalingFactor V2: weight scale (v1: ignored)
     */
    public record Rules(Scoring scoring, int experts, int topK, int groups, int topkGroup, boolean roundLogitsToBf16, boolean normTopkProb,
                        float routedScalingFactor) {
        public Rules {
            if (experts < 1 || experts > MAX_EXPERTS) {
                throw new IllegalArgumentException("router: experts must be in [1, " + MAX_EXPERTS + "], got " + experts);
            }
            if (topK < 1 || topK > Math.min(MAX_TOP_K, experts)) {
                throw new IllegalArgumentException("router: top_k must be in [1, " + Math.min(MAX_TOP_K, experts) + "], got " + topK);
            }
            if (scoring == Scoring.SIGMOID_GROUP_LIMITED) {
                if (groups < 1 || groups > MAX_GROUPS || experts % groups != 0) {
                    throw new IllegalArgumentException("router: n_group must divide " + experts + " experts and be <= " + MAX_GROUPS + ", got " + groups);
                }
                if (topkGroup < 1 || topkGroup > groups || (long) topkGroup * (experts / groups) < topK) {
                    throw new IllegalArgumentException("router: topk_group " + topkGroup + " of " + groups + " groups cannot hold " + topK + " experts");
                }
            }
        }
    }

    public RouterTopK(CudaDevice device) {
        this.kernel = device.module("router_top_k").kernel("router_top_k");
    }

    /**
     * @param logits      (T, E) fp32 router logits: post-attention-normed hidden · mlp.gate.weightᵀ
     * @param expertBias  (E) fp32 mlp.gate.expert_bias, or null (no bias; always null for SOFTMAX)
     * @param topkIds     (T, K) int32 out, best first
     * @param topkWeights (T, K) fp32 out
     */
    public void launch(CUstream s, DeviceBuffer logits, DeviceBuffer expertBias, DeviceBuffer topkIds, DeviceBuffer topkWeights, int tokens,
                       Rules r) {
        launch(s, logits, expertBias, topkIds, topkWeights, null, null, tokens, r);
    }

    /**
     * {@link #launch} that also writes the routed experts' group plan ({@link MoeExperts#group}'s output, from the ids
     * it chose) in the same launch: the last of its blocks to finish builds it.
     *
     * @param plan (MoeExperts.planWords(T, K, E)) int32 out
     * @param done (1) uint32 block counter: 0 before the first launch, left 0 by every launch (the last block resets
     *             it), so it may be reused by every later launch and captured in a CUDA graph
     */
    public void launchWithPlan(CUstream s, DeviceBuffer logits, DeviceBuffer expertBias, DeviceBuffer topkIds, DeviceBuffer topkWeights,
                               DeviceBuffer plan, DeviceBuffer done, int tokens, Rules r) {
        Shapes.require("router_top_k", "plan", plan, 4L * MoeExperts.planWords(tokens, r.topK(), r.experts()));
        Shapes.require("router_top_k", "done", done, 4);
        launch(s, logits, expertBias, topkIds, topkWeights, plan, done, tokens, r);
    }

    private void launch(CUstream s, DeviceBuffer logits, DeviceBuffer expertBias, DeviceBuffer topkIds, DeviceBuffer topkWeights,
                        DeviceBuffer plan, DeviceBuffer done, int tokens, Rules r) {
        String op = "router_top_k";
        Shapes.positive(op, "tokens", tokens);
        Shapes.require(op, "logits", logits, 4L * tokens * r.experts());
        boolean sigmoid = r.scoring() == Scoring.SIGMOID_GROUP_LIMITED;
        boolean bias = sigmoid && expertBias != null;
        if (bias) {
            Shapes.require(op, "expertBias", expertBias, 4L * r.experts());
        }
        Shapes.require(op, "topkIds", topkIds, 4L * tokens * r.topK());
        Shapes.require(op, "topkWeights", topkWeights, 4L * tokens * r.topK());
        kernel.launch(s, tokens, THREADS, 0, logits, bias ? expertBias : null, topkIds, topkWeights, plan, done, tokens, r.experts(), r.topK(),
                sigmoid ? r.groups() : 1, sigmoid ? r.topkGroup() : 1, sigmoid ? 0 : 1, bias ? 1 : 0, r.roundLogitsToBf16() ? 1 : 0,
                r.normTopkProb() ? 1 : 0, r.routedScalingFactor());
    }
}
