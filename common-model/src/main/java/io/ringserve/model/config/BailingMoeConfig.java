package io.ringserve.model.config;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code config.json} of a BailingMoe <b>v1</b> checkpoint ({@code BailingMoeForCausalLM}: Ring-lite,
 * Ring-lite-distill-preview, the Ling-lite family). Components carry the Hugging Face key names in
 * camelCase; absent keys take the defaults of {@code BailingMoeConfig} in {@code configuration_bailing_moe.py}
 * (docs: MODEL-V1.md §2), which differ from V2's: {@code use_bias} true, {@code rms_norm_eps} 1e-5,
 * {@code rope_theta} 10000, {@code num_key_value_heads} 0, {@code norm_head} false, dropouts 0.1. Real
 * checkpoints set every architectural key, so a config that leans on a default the engine cannot run
 * (a linear bias, zero KV heads) is refused naming the key.
 *
 * <p>What v1 does not have compared with V2: QK-norm, partial RoPE (every head dim rotates), the sigmoid
 * group-limited router with expert bias and scaling (v1 routes with a softmax top-k), MTP layers.
 *
 * <p>Legend used by the derived values: D = hidden, H = query heads, Hkv = KV heads, d = head dim,
 * E = routed experts, K = experts per token, Ie = expert intermediate.
 *
 * @param intermediateSize        dense-MLP width, 0 when config.json has none (only layers below
 *                                {@code first_k_dense_replace} use it, and no published v1 checkpoint has any)
 * @param moeIntermediateSize     Ie, width of each routed expert; the shared MLP is {@code num_shared_experts} × Ie
 * @param normHead                lm_head is L2-normalised per hidden dim over the vocab axis before use
 * @param normSoftmax             present in configs, read by no implementation
 * @param torchDtype              null when absent
 */
public record BailingMoeConfig(
        List<String> architectures,
        String modelType,
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numKeyValueHeads,
        int headDim,
        String hiddenAct,
        boolean useQkvBias,
        boolean useBias,
        double rmsNormEps,
        boolean normHead,
        boolean normSoftmax,
        boolean tieWordEmbeddings,
        double embeddingDropout,
        double attentionDropout,
        double outputDropout,
        double initializerRange,
        int maxPositionEmbeddings,
        double ropeTheta,
        RopeScaling ropeScaling,
        boolean useCache,
        boolean useSlidingWindow,
        int slidingWindow,
        int maxWindowLayers,
        int numExperts,
        int numSharedExperts,
        int numExpertsPerTok,
        boolean normTopkProb,
        int moeIntermediateSize,
        int firstKDenseReplace,
        boolean outputRouterLogits,
        Integer bosTokenId,
        Integer eosTokenId,
        Integer padTokenId,
        String torchDtype) implements ModelConfig {

    public static final String ARCHITECTURE = "BailingMoeForCausalLM";

    public BailingMoeConfig {
        architectures = List.copyOf(architectures);
        if (!modelType.equals("bailing_moe")) {
            throw new ConfigException("model_type \"" + modelType + "\" is not supported for " + ARCHITECTURE + " (expected \"bailing_moe\")");
        }
        if (!architectures.isEmpty() && !architectures.getFirst().equals(ARCHITECTURE)) {
            throw new ConfigException("architectures[0] \"" + architectures.getFirst() + "\" is not " + ARCHITECTURE
                    + " (supported: " + String.join(", ", ModelConfig.SUPPORTED_ARCHITECTURES) + ")");
        }
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("num_hidden_layers", numHiddenLayers);
        positive("num_attention_heads", numAttentionHeads);
        if (numKeyValueHeads <= 0) {
            throw new ConfigException("num_key_value_heads (" + numKeyValueHeads + ") must be > 0 (BailingMoeConfig defaults it to 0 when absent)");
        }
        positive("head_dim", headDim);
        positive("max_position_embeddings", maxPositionEmbeddings);
        positive("num_experts", numExperts);
        positive("num_experts_per_tok", numExpertsPerTok);
        positive("moe_intermediate_size", moeIntermediateSize);
        if (intermediateSize < 0) {
            throw new ConfigException("intermediate_size (" + intermediateSize + ") must be > 0");
        }
        if (numSharedExperts < 0) {
            throw new ConfigException("num_shared_experts (" + numSharedExperts + ") must be >= 0");
        }
        if (numExpertsPerTok > numExperts) {
            throw new ConfigException("num_experts_per_tok (" + numExpertsPerTok + ") is larger than num_experts (" + numExperts + ")");
        }
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw new ConfigException("num_attention_heads (" + numAttentionHeads + ") is not divisible by num_key_value_heads (" + numKeyValueHeads + ")");
        }
        if (headDim < 2 || headDim % 2 != 0) {
            throw new ConfigException("head_dim (" + headDim + ") must be even and >= 2 (RoPE rotates every head dim)");
        }
        if (!(ropeTheta > 0)) {
            throw new ConfigException("rope_theta (" + ropeTheta + ") must be > 0");
        }
        if (!(rmsNormEps > 0)) {
            throw new ConfigException("rms_norm_eps (" + rmsNormEps + ") must be > 0");
        }
        if (firstKDenseReplace < 0 || firstKDenseReplace > numHiddenLayers) {
            throw new ConfigException("first_k_dense_replace (" + firstKDenseReplace + ") must be in [0, num_hidden_layers (" + numHiddenLayers + ")]");
        }
        if (firstKDenseReplace > 0 && intermediateSize <= 0) {
            throw new ConfigException("intermediate_size is required when first_k_dense_replace (" + firstKDenseReplace + ") > 0");
        }
        if (!hiddenAct.equals("silu")) {
            throw new ConfigException("hidden_act \"" + hiddenAct + "\" is not supported (only \"silu\")");
        }
        if (useQkvBias) {
            throw new ConfigException("use_qkv_bias true is not supported (Ring-lite has no attention biases)");
        }
        if (useBias) {
            throw new ConfigException("use_bias true is not supported (Ring-lite sets it false; BailingMoeConfig defaults it to true when absent)");
        }
        if (useSlidingWindow) {
            throw new ConfigException("use_sliding_window true is not supported (only full causal attention)");
        }
        if (eosTokenId != null && (eosTokenId < 0 || eosTokenId >= vocabSize)) {
            throw new ConfigException("eos_token_id (" + eosTokenId + ") is outside the vocabulary [0, " + vocabSize + ")");
        }
    }

    private static void positive(String key, int value) {
        if (value <= 0) {
            throw new ConfigException(key + " (" + value + ") must be > 0");
        }
    }

    @Override
    public String architecture() {
        return ARCHITECTURE;
    }

    // ---- derived values --------------------------------------------------------------------------

    /** v1 has no {@code query_layernorm} / {@code key_layernorm}. */
    @Override
    public boolean useQkNorm() {
        return false;
    }

    /** v1 rotates every head dim (NeoX half split over d). */
    @Override
    public int rotaryDim() {
        return headDim;
    }

    /** The {@code num_shared_experts} shared experts are one SwiGLU MLP of {@code num_shared_experts × Ie}. */
    @Override
    public int sharedExpertIntermediateSize() {
        return moeIntermediateSize * numSharedExperts;
    }

    /** Parameters of the model: embedding, lm_head (unless tied), attention, norms, router, experts, shared MLP. */
    @Override
    public long parameterCount() {
        long d = hiddenSize;
        long attention = (long) qkvDim() * d + (long) queryDim() * d + 2L * d;
        long dense = 3L * intermediateSize * d;
        long moe = (long) numExperts * d + numExperts * 3L * moeIntermediateSize * d + 3L * sharedExpertIntermediateSize() * d;
        int moeLayers = numHiddenLayers - firstKDenseReplace;
        long embed = (long) vocabSize * d;
        return embed * (tieWordEmbeddings ? 1 : 2) + d + numHiddenLayers * attention + (long) firstKDenseReplace * dense + (long) moeLayers * moe;
    }

    /** Parameters one token goes through: as {@link #parameterCount()} with K of the E experts. */
    public long activatedParameterCount() {
        long d = hiddenSize;
        long inactive = (long) (numExperts - numExpertsPerTok) * 3L * moeIntermediateSize * d;
        return parameterCount() - (long) (numHiddenLayers - firstKDenseReplace) * inactive;
    }

    // ---- loading -----------------------------------------------------------------------------------

    /** Reads one config.json as v1 (use {@link ModelConfig#load(Path)} to accept either version). */
    public static BailingMoeConfig load(Path configJson) {
        return parseNamingSource(JsonFields.read(configJson));
    }

    public static BailingMoeConfig parse(String source, String json) {
        return parseNamingSource(JsonFields.parse(source, json));
    }

    /** Every message starts with the file name, whichever check raised it. */
    static BailingMoeConfig parseNamingSource(JsonFields f) {
        return f.namingSource(BailingMoeConfig::parse);
    }

    private static BailingMoeConfig parse(JsonFields f) {
        if (!f.has("model_type")) {
            throw new ConfigException("model_type is missing (expected \"bailing_moe\")");
        }
        if (!f.has("moe_intermediate_size")) {
            throw new ConfigException("moe_intermediate_size is missing (BailingMoeConfig has no default for it)");
        }
        int hidden = f.intOr("hidden_size", 1024);
        int heads = f.intOr("num_attention_heads", 16);
        int maxPos = f.intOr("max_position_embeddings", 16384);
        JsonFields scaling = f.object("rope_scaling");
        if (scaling != null) {
            // v1's YaRN (DeepSeek style) scales cos/sin by yarn_get_mscale(s, mscale) / yarn_get_mscale(s, mscale_all_dim);
            // with the defaults 1 and 0 that is 0.1 ln s + 1, the one attention factor implemented
            if (scaling.doubleOr("mscale", 1.0) != 1.0 || scaling.doubleOr("mscale_all_dim", 0.0) != 0.0) {
                throw new ConfigException(scaling.source() + ": mscale / mscale_all_dim other than 1 / 0 are not supported");
            }
        }
        List<Integer> eos = f.intOrIntList("eos_token_id");
        // head_dim: absent or null means hidden / heads, as the configuration class computes it
        int headDim = f.has("head_dim") ? f.intOr("head_dim", 0) : hidden / Math.max(1, heads);
        return new BailingMoeConfig(
                f.stringList("architectures"),
                f.stringOr("model_type", ""),
                f.intOr("vocab_size", 30592),
                hidden,
                f.intOr("intermediate_size", 0),
                f.intOr("num_hidden_layers", 24),
                heads,
                f.intOr("num_key_value_heads", 0),
                headDim,
                f.stringOr("hidden_act", "silu"),
                f.boolOr("use_qkv_bias", false),
                f.boolOr("use_bias", true),
                f.doubleOr("rms_norm_eps", 1e-5),
                f.boolOr("norm_head", false),
                f.boolOr("norm_softmax", false),
                f.boolOr("tie_word_embeddings", false),
                f.doubleOr("embedding_dropout", 0.1),
                f.doubleOr("attention_dropout", 0.1),
                f.doubleOr("output_dropout", 0.1),
                f.doubleOr("initializer_range", 0.02),
                maxPos,
                f.doubleOr("rope_theta", 10000.0),
                RopeScaling.parse(scaling, maxPos),
                f.boolOr("use_cache", true),
                f.boolOr("use_sliding_window", false),
                f.intOr("sliding_window", 4096),
                f.intOr("max_window_layers", 28),
                f.intOr("num_experts", 16),
                f.intOr("num_shared_experts", 0),
                f.intOr("num_experts_per_tok", 2),
                f.boolOr("norm_topk_prob", true),
                f.intOr("moe_intermediate_size", 0),
                f.intOr("first_k_dense_replace", 0),
                f.boolOr("output_router_logits", false),
                f.intOrNull("bos_token_id"),
                eos.isEmpty() ? null : eos.getFirst(),
                f.has("pad_token_id") ? f.intOr("pad_token_id", 0) : 126081,
                f.has("torch_dtype") ? f.stringOr("torch_dtype", null) : f.stringOr("dtype", null));
    }

    /**
     * The Ring-lite / Ling-lite shape (MODEL-V1.md §2): 28 MoE layers, hidden 2048, 16 / 4 heads of 128,
     * 64 experts (intermediate 1408) top-6, two shared experts fused, vocab 126464; 16,801,974,272
     * parameters. {@code norm_head} could not be pinned for Ring-lite; the preset keeps the Ling-lite value
     * (true). Used for synthetic-weight benchmarks on a GPU (about 33.6 GB of bf16 weights).
     */
    public static BailingMoeConfig ringLite() {
        return new BailingMoeConfig(List.of(ARCHITECTURE), "bailing_moe", 126464, 2048, 5632, 28, 16, 4, 128, "silu", false, false, 1e-6,
                true, false, false, 0.0, 0.0, 0.0, 0.006, 32768, 600000.0, null, true, false, 4096, 28, 64, 2, 6, true, 1408, 0, false,
                126080, 126081, 126081, "bfloat16");
    }

    /** A copy with another shape; the rest (norms, RoPE, routing rules, norm_head) unchanged. */
    public BailingMoeConfig withShape(int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads, int headDim,
                                      int experts, int topK, int sharedExperts, int moeIntermediate, int maxPositions) {
        return new BailingMoeConfig(architectures, modelType, vocab, hidden, intermediate, layers, heads, kvHeads, headDim, hiddenAct,
                useQkvBias, useBias, rmsNormEps, normHead, normSoftmax, tieWordEmbeddings, embeddingDropout, attentionDropout, outputDropout,
                initializerRange, maxPositions, ropeTheta, ropeScaling, useCache, useSlidingWindow, slidingWindow, layers, experts,
                sharedExperts, topK, normTopkProb, moeIntermediate, Math.min(firstKDenseReplace, layers),
                outputRouterLogits, bosTokenId == null ? null : Math.min(bosTokenId, vocab - 1),
                eosTokenId == null ? null : Math.min(eosTokenId, vocab - 1), padTokenId == null ? null : Math.min(padTokenId, vocab - 1),
                torchDtype);
    }

    /** A copy with other special-token ids (bos, eos, pad). */
    @Override
    public BailingMoeConfig withTokens(Integer bos, Integer eos, Integer pad) {
        return new BailingMoeConfig(architectures, modelType, vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, hiddenAct, useQkvBias, useBias, rmsNormEps, normHead, normSoftmax, tieWordEmbeddings,
                embeddingDropout, attentionDropout, outputDropout, initializerRange, maxPositionEmbeddings, ropeTheta, ropeScaling, useCache,
                useSlidingWindow, slidingWindow, maxWindowLayers, numExperts, numSharedExperts, numExpertsPerTok, normTopkProb,
                moeIntermediateSize, firstKDenseReplace, outputRouterLogits, bos, eos, pad, torchDtype);
    }

    /** Writes this config as Hugging Face {@code config.json} text (with the v1 {@code auto_map}). */
    @Override
    public String toJson() {
        List<String> kv = new ArrayList<>();
        kv.add(q("architectures") + ": [" + String.join(", ", architectures.stream().map(BailingMoeConfig::q).toList()) + "]");
        kv.add(q("model_type") + ": " + q(modelType));
        kv.add(q("auto_map") + ": {" + q("AutoConfig") + ": " + q("configuration_bailing_moe.BailingMoeConfig") + ", " + q("AutoModel") + ": "
                + q("modeling_bailing_moe.BailingMoeModel") + ", " + q("AutoModelForCausalLM") + ": " + q("modeling_bailing_moe.BailingMoeForCausalLM") + "}");
        kv.add(q("vocab_size") + ": " + vocabSize);
        kv.add(q("hidden_size") + ": " + hiddenSize);
        kv.add(q("intermediate_size") + ": " + (intermediateSize > 0 ? Integer.toString(intermediateSize) : "null"));
        kv.add(q("num_hidden_layers") + ": " + numHiddenLayers);
        kv.add(q("num_attention_heads") + ": " + numAttentionHeads);
        kv.add(q("num_key_value_heads") + ": " + numKeyValueHeads);
        kv.add(q("head_dim") + ": " + headDim);
        kv.add(q("hidden_act") + ": " + q(hiddenAct));
        kv.add(q("use_qkv_bias") + ": " + useQkvBias);
        kv.add(q("use_bias") + ": " + useBias);
        kv.add(q("rms_norm_eps") + ": " + rmsNormEps);
        kv.add(q("norm_head") + ": " + normHead);
        kv.add(q("norm_softmax") + ": " + normSoftmax);
        kv.add(q("tie_word_embeddings") + ": " + tieWordEmbeddings);
        kv.add(q("embedding_dropout") + ": " + embeddingDropout);
        kv.add(q("attention_dropout") + ": " + attentionDropout);
        kv.add(q("output_dropout") + ": " + outputDropout);
        kv.add(q("initializer_range") + ": " + initializerRange);
        kv.add(q("max_position_embeddings") + ": " + maxPositionEmbeddings);
        kv.add(q("rope_theta") + ": " + ropeTheta);
        kv.add(q("rope_scaling") + ": " + (ropeScaling == null ? "null"
                : "{\"type\": \"yarn\", \"factor\": " + ropeScaling.factor() + ", \"original_max_position_embeddings\": "
                + ropeScaling.originalMaxPositionEmbeddings() + ", \"beta_fast\": " + ropeScaling.betaFast() + ", \"beta_slow\": "
                + ropeScaling.betaSlow() + "}"));
        kv.add(q("use_cache") + ": " + useCache);
        kv.add(q("use_sliding_window") + ": " + useSlidingWindow);
        kv.add(q("sliding_window") + ": " + slidingWindow);
        kv.add(q("max_window_layers") + ": " + maxWindowLayers);
        kv.add(q("num_experts") + ": " + numExperts);
        kv.add(q("num_shared_experts") + ": " + numSharedExperts);
        kv.add(q("num_experts_per_tok") + ": " + numExpertsPerTok);
        kv.add(q("norm_topk_prob") + ": " + normTopkProb);
        kv.add(q("moe_intermediate_size") + ": " + moeIntermediateSize);
        kv.add(q("first_k_dense_replace") + ": " + firstKDenseReplace);
        kv.add(q("output_router_logits") + ": " + outputRouterLogits);
        if (bosTokenId != null) {
            kv.add(q("bos_token_id") + ": " + bosTokenId);
        }
        if (eosTokenId != null) {
            kv.add(q("eos_token_id") + ": " + eosTokenId);
        }
        if (padTokenId != null) {
            kv.add(q("pad_token_id") + ": " + padTokenId);
        }
        if (torchDtype != null) {
            kv.add(q("torch_dtype") + ": " + q(torchDtype));
        }
        return "{\n  " + String.join(",\n  ", kv) + "\n}\n";
    }

    private static String q(String s) {
        return '"' + s.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
    }
}
