package io.ringserve.worker.reference;

import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.worker.weights.DType;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import io.ringserve.worker.weights.TensorInfo;
import io.ringserve.worker.weights.WeightsException;
import java.util.ArrayList;
import java.util.List;

/**
 * Every tensor of a BailingMoeV2 checkpoint, by the names of {@code modeling_bailing_moe_v2.py}. Matrices
 * stay in the checkpoint's memory mapping (bf16); vectors (norm weights, expert bias) are read as float32.
 *
 * <p>Legend: V = vocab, D = hidden, I = dense intermediate, E = experts, Ie = expert intermediate,
 * Is = shared expert intermediate, d = head dim, QKV = (H + 2·Hkv)·d.
 *
 * @param wordEmbeddings (V, D)
 * @param norm           (D) final RMSNorm
 * @param lmHead         (V, D); the embedding matrix when {@code tie_word_embeddings}
 */
public record ModelWeights(BailingMoeV2Config config, Matrix wordEmbeddings, List<Layer> layers, float[] norm, Matrix lmHead) {

    /**
     * @param inputLayernorm         (D)
     * @param queryKeyValue          (QKV, D) rows: Q heads, then K heads, then V heads
     * @param queryLayernorm         (d) shared by all query heads; null without QK-norm
     * @param keyLayernorm           (d) shared by all key heads; null without QK-norm
     * @param dense                  (D, H·d) the output projection
     * @param postAttentionLayernorm (D)
     */
    public record Layer(float[] inputLayernorm, Matrix queryKeyValue, float[] queryLayernorm, float[] keyLayernorm,
                        Matrix dense, float[] postAttentionLayernorm, FeedForward mlp) {
    }

    /** What follows attention in a layer: the dense MLP (layers below first_k_dense_replace) or the MoE block. */
    public sealed interface FeedForward permits Mlp, SparseMoe {
    }

    /**
     * SwiGLU: {@code down(silu(gate(x)) ⊙ up(x))}.
     *
     * @param gateProj (I, D)
     * @param upProj   (I, D)
     * @param downProj (D, I)
     */
    public record Mlp(Matrix gateProj, Matrix upProj, Matrix downProj) implements FeedForward {
    }

    /**
     * @param gate          (E, D) router weight
     * @param expertBias    (E) added to the sigmoid scores for selection only; zeros when absent
     * @param experts       E routed experts, each (Ie, D) / (Ie, D) / (D, Ie)
     * @param sharedExperts (Is, D) / (Is, D) / (D, Is), always on; null when num_shared_experts is 0
     */
    public record SparseMoe(Matrix gate, float[] expertBias, List<Mlp> experts, Mlp sharedExperts) implements FeedForward {
    }

    /** Loads (maps) every tensor the config calls for; a missing or misshapen tensor names itself. */
    public static ModelWeights load(BailingMoeV2Config c, SafetensorsCheckpoint ckpt) {
        int d = c.hiddenSize();
        Matrix embed = matrix(ckpt, "model.word_embeddings.weight", c.vocabSize(), d);
        List<Layer> layers = new ArrayList<>(c.numHiddenLayers());
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            FeedForward mlp;
            if (c.isMoeLayer(i)) {
                List<Mlp> experts = new ArrayList<>(c.numExperts());
                for (int e = 0; e < c.numExperts(); e++) {
                    experts.add(mlp(ckpt, p + "mlp.experts." + e + ".", c.moeIntermediateSize(), d));
                }
                String bias = p + "mlp.gate.expert_bias";
                float[] expertBias = ckpt.contains(bias) ? vector(ckpt, bias, c.numExperts()) : new float[c.numExperts()];
                if (!ckpt.contains(bias) && c.moeRouterEnableExpertBias()) {
                    throw new WeightsException("tensor '" + bias + "' not found, but config.json moe_router_enable_expert_bias is true");
                }
                Mlp shared = c.numSharedExperts() > 0 ? mlp(ckpt, p + "mlp.shared_experts.", c.sharedExpertIntermediateSize(), d) : null;
                mlp = new SparseMoe(matrix(ckpt, p + "mlp.gate.weight", c.numExperts(), d), expertBias, List.copyOf(experts), shared);
            } else {
                mlp = mlp(ckpt, p + "mlp.", c.intermediateSize(), d);
            }
            layers.add(new Layer(
                    vector(ckpt, p + "input_layernorm.weight", d),
                    matrix(ckpt, p + "attention.query_key_value.weight", c.qkvDim(), d),
                    c.useQkNorm() ? vector(ckpt, p + "attention.query_layernorm.weight", c.headDim()) : null,
                    c.useQkNorm() ? vector(ckpt, p + "attention.key_layernorm.weight", c.headDim()) : null,
                    matrix(ckpt, p + "attention.dense.weight", d, c.queryDim()),
                    vector(ckpt, p + "post_attention_layernorm.weight", d),
                    mlp));
        }
        Matrix lmHead = c.tieWordEmbeddings() && !ckpt.contains("lm_head.weight") ? embed : matrix(ckpt, "lm_head.weight", c.vocabSize(), d);
        return new ModelWeights(c, embed, List.copyOf(layers), vector(ckpt, "model.norm.weight", d), lmHead);
    }

    private static Mlp mlp(SafetensorsCheckpoint ckpt, String prefix, int intermediate, int hidden) {
        return new Mlp(
                matrix(ckpt, prefix + "gate_proj.weight", intermediate, hidden),
                matrix(ckpt, prefix + "up_proj.weight", intermediate, hidden),
                matrix(ckpt, prefix + "down_proj.weight", hidden, intermediate));
    }

    /** bf16 stays mapped; f32 is used as stored; f16 is widened to f32 (both exactly representable). */
    private static Matrix matrix(SafetensorsCheckpoint ckpt, String name, int rows, int cols) {
        TensorInfo info = ckpt.info(name);
        if (info.dtype() == DType.BF16) {
            return new Matrix.Bf16(ckpt.bf16(name, rows, cols), rows, cols);
        }
        return new Matrix.F32(ckpt.readFloat(name, rows, cols), rows, cols);
    }

    private static float[] vector(SafetensorsCheckpoint ckpt, String name, int n) {
        return ckpt.readFloat(name, n);
    }
}
