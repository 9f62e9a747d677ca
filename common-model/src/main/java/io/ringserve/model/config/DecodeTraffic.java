package io.ringserve.model.config;

/**
 * Bytes of weights one decoded token reads from memory at batch 1 with bf16 weights (KV cache excluded):
 * the embedding row, every layer's attention and norms, the dense MLP or the router plus the
 * {@code num_experts_per_tok} selected experts plus the shared expert, the final norm and the whole lm_head.
 * Dividing a device's copy bandwidth by this gives the batch-1 decode roofline (docs/MODEL.md §8,
 * MODEL-V1.md §7). V2's {@code expert_bias} is fp32; everything else counts 2 bytes per element.
 */
public final class DecodeTraffic {
    private static final long BF16 = 2;

    private DecodeTraffic() {
    }

    /** Bytes read per decoded token at batch 1. */
    public static long bytesPerToken(ModelConfig c) {
        long d = c.hiddenSize();
        long bytes = d * BF16; // embedding row
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            bytes += attentionBytes(c);
            bytes += c.isMoeLayer(l) ? moeBytes(c) : 3L * c.intermediateSize() * d * BF16;
        }
        bytes += d * BF16;                       // final norm
        bytes += (long) c.vocabSize() * d * BF16; // lm_head
        return bytes;
    }

    /** One layer's attention: fused QKV, output projection, the two layer norms and QK-norm weights. */
    static long attentionBytes(ModelConfig c) {
        long d = c.hiddenSize();
        long norms = 2 * d + (c.useQkNorm() ? 2L * c.headDim() : 0);
        return ((long) c.qkvDim() * d + d * c.queryDim() + norms) * BF16;
    }

    /** One MoE layer at batch 1: router (and V2's fp32 expert bias), the selected experts, the shared expert. */
    static long moeBytes(ModelConfig c) {
        long d = c.hiddenSize();
        long router = (long) c.numExperts() * d * BF16 + (hasExpertBias(c) ? (long) c.numExperts() * Float.BYTES : 0);
        long experts = (long) c.numExpertsPerTok() * 3 * c.moeIntermediateSize() * d * BF16;
        long shared = c.numSharedExperts() > 0 ? 3L * c.sharedExpertIntermediateSize() * d * BF16 : 0;
        return router + experts + shared;
    }

    private static boolean hasExpertBias(ModelConfig c) {
        return c instanceof BailingMoeV2Config v2 && v2.moeRouterEnableExpertBias();
    }
}
