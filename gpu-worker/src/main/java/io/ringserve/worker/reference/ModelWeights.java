package io.ringserve.worker.reference;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.weights.DType;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import io.ringserve.worker.weights.TensorInfo;
import io.ringserve.worker.weights.WeightsException;
import java.util.ArrayList;
import java.util.List;

/**
 * Every tensor of a BailingMoe checkpoint, V2 ({@code modeling_bailing_moe_v2.py}) or v1
 * ({@code modeling_bailing_moe.py}); both use the same names, v1 simply has no {@code query_layernorm} /
 * {@code key_layernorm} and no {@code expert_bias} (MODEL-V1.md §3). Matrices stay in the checkpoint's
 * memory mapping (bf16); vectors (norm weights, expert bias) are read as float32.
 *
 * <p>v1 with {@code norm_head}: the lm_head used is the stored one with each column (hidden dim h)
 * divided by its L2 norm over the vocab axis plus 1e-7, computed once here in float32 (MODEL-V1.md §4.7).
 *
 * <p>A shard holds a {@link LayerRange}: only the tensors of its layers are mapped, the word embeddings only
 * on the first shard, the final norm and lm_head only on the last. The tensors of other layers are never
 * read (their pages of the memory mapping are never touched).
 *
 * <p>Legend: V = vocab, D = hidden, I = dense intermediate, E = experts, Ie = expert intermediate,
 * Is = shared expert intermediate, d = head dim, QKV = (H + 2·Hkv)·d.
 *
 * @param range          the decoder layers held
 * @param wordEmbeddings (V, D); null unless {@code range.isFirst()}
 * @param layers         the layers {@code range.start() .. range.end()-1}, in order (see {@link #layer})
 * @param norm           (D) final RMSNorm; null unless {@code range.isLast()}
 * @param lmHead         (V, D); the embedding matrix when {@code tie_word_embeddings}; column-normalised
 *                       float32 for v1 with {@code norm_head}; null unless {@code range.isLast()}
 */
public record ModelWeights(ModelConfig config, LayerRange range, Matrix wordEmbeddings, List<Layer> layers, float[] norm, Matrix lmHead) {

    public ModelWeights {
        if (layers.size() != range.count()) {
            throw new IllegalArgumentException(layers.size() + " layers for the range " + range);
        }
    }

    /** Decoder layer {@code l} (absolute index), which this shard must hold. */
    public Layer layer(int l) {
        if (!range.contains(l)) {
            throw new IllegalArgumentException("layer " + l + " is not held by this shard (layers " + range + ")");
        }
        return layers.get(l - range.start());
    }

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
     * @param expertBias    (E) V2: added to the sigmoid scores for selection only, zeros when absent;
     *                      null for a router without one (v1)
     * @param experts       E routed experts, each (Ie, D) / (Ie, D) / (D, Ie)
     * @param sharedExperts (Is, D) / (Is, D) / (D, Is), always on; null when num_shared_experts is 0
     */
    public record SparseMoe(Matrix gate, float[] expertBias, List<Mlp> experts, Mlp sharedExperts) implements FeedForward {
    }

    /** Loads (maps) every tensor the config calls for; a missing or misshapen tensor names itself. */
    public static ModelWeights load(ModelConfig c, SafetensorsCheckpoint ckpt) {
        return load(c, ckpt, LayerRange.all(c.numHiddenLayers()));
    }

    /** Loads (maps) the tensors of one shard: its layers, plus the embeddings (first) and norm + lm_head (last). */
    public static ModelWeights load(ModelConfig c, SafetensorsCheckpoint ckpt, LayerRange range) {
        if (range.total() != c.numHiddenLayers()) {
            throw new IllegalArgumentException("layer range " + range + " does not match num_hidden_layers " + c.numHiddenLayers());
        }
        int d = c.hiddenSize();
        boolean expertBiasTensor = Router.of(c).usesExpertBias();
        Matrix embed = range.isFirst() || (range.isLast() && tiedHead(c, ckpt)) ? matrix(ckpt, "model.word_embeddings.weight", c.vocabSize(), d) : null;
        List<Layer> layers = new ArrayList<>(range.count());
        for (int i = range.start(); i < range.end(); i++) {
            String p = "model.layers." + i + ".";
            FeedForward mlp;
            if (c.isMoeLayer(i)) {
                List<Mlp> experts = new ArrayList<>(c.numExperts());
                for (int e = 0; e < c.numExperts(); e++) {
                    experts.add(mlp(ckpt, p + "mlp.experts." + e + ".", c.moeIntermediateSize(), d));
                }
                float[] expertBias = expertBiasTensor ? expertBias(c, ckpt, p + "mlp.gate.expert_bias") : null;
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
        Matrix lmHead = null;
        float[] norm = null;
        if (range.isLast()) {
            lmHead = tiedHead(c, ckpt) ? embed : matrix(ckpt, "lm_head.weight", c.vocabSize(), d);
            if (c instanceof BailingMoeConfig v1 && v1.normHead()) {
                lmHead = normalizeColumns(lmHead);
            }
            norm = vector(ckpt, "model.norm.weight", d);
        }
        return new ModelWeights(c, range, range.isFirst() ? embed : null, List.copyOf(layers), norm, lmHead);
    }

    /** The lm_head is the embedding matrix (tied and not stored separately). */
    private static boolean tiedHead(ModelConfig c, SafetensorsCheckpoint ckpt) {
        return c.tieWordEmbeddings() && !ckpt.contains("lm_head.weight");
    }

    /** Bytes of the checkpoint tensors a shard holding {@code range} maps (what its weights take in memory). */
    public static long heldBytes(ModelConfig c, SafetensorsCheckpoint ckpt, LayerRange range) {
        long total = 0;
        for (String name : ckpt.names()) {
            if (holds(c, ckpt, range, name)) {
                total += ckpt.info(name).byteSize();
            }
        }
        return total;
    }

    /** Whether a shard holding {@code range} loads tensor {@code name}. */
    static boolean holds(ModelConfig c, SafetensorsCheckpoint ckpt, LayerRange range, String name) {
        if (name.startsWith("model.layers.")) {
            int dot = name.indexOf('.', "model.layers.".length());
            try {
                return dot > 0 && range.contains(Integer.parseInt(name.substring("model.layers.".length(), dot)));
            } catch (NumberFormatException e) {
                return false;
            }
        }
        return switch (name) {
            case "model.word_embeddings.weight" -> range.isFirst() || (range.isLast() && tiedHead(c, ckpt));
            case "model.norm.weight", "lm_head.weight" -> range.isLast();
            default -> false;
        };
    }

    /** V2: the tensor when present, else zeros, refused when the config says the router has one. */
    private static float[] expertBias(ModelConfig c, SafetensorsCheckpoint ckpt, String name) {
        if (ckpt.contains(name)) {
            return vector(ckpt, name, c.numExperts());
        }
        if (c instanceof BailingMoeV2Config v2 && v2.moeRouterEnableExpertBias()) {
            throw new WeightsException("tensor '" + name + "' not found, but config.json moe_router_enable_expert_bias is true");
        }
        return new float[c.numExperts()];
    }

    /**
     * {@code norm_head}: {@code W[v, h] / (‖W[:, h]‖₂ + 1e-7)}, the norm taken over the vocab axis (dim 0) for
     * each hidden dim h, as {@code F.normalize(w, dim=0)} / the reference's {@code torch.norm(w, dim=0)}.
     * Squares are summed in double, the result is float32 (V, D).
     */
    public static Matrix.F32 normalizeColumns(Matrix w) {
        int rows = w.rows();
        int cols = w.cols();
        if ((long) rows * cols > Integer.MAX_VALUE - 8) {
            throw new WeightsException("lm_head.weight (" + rows + ", " + cols + ") is too large to normalise in one float32 array");
        }
        float[] out = new float[rows * cols];
        double[] sumSquares = new double[cols];
        for (int r = 0; r < rows; r++) {
            w.row(r, out, r * cols);
            for (int c = 0; c < cols; c++) {
                double v = out[r * cols + c];
                sumSquares[c] += v * v;
            }
        }
        float[] norm = new float[cols];
        for (int c = 0; c < cols; c++) {
            norm[c] = (float) Math.sqrt(sumSquares[c]) + 1e-7f;
        }
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                out[r * cols + c] /= norm[c];
            }
        }
        return new Matrix.F32(out, rows, cols);
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
