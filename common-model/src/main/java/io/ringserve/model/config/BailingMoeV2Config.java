package io.ringserve.model.config;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code config.json} of a BailingMoeV2 ("Ling 2.0") checkpoint such as Ring-mini-2.0. Components carry the
 * Hugging Face key names in camelCase; absent keys take the defaults of {@code BailingMoeV2Config} in
 * {@code configuration_bailing_moe_v2.py}. Values are checked here, so the engines can rely on them.
 *
 * <p>Legend used by the derived values: D = hidden, H = query heads, Hkv = KV heads, d = head dim,
 * E = routed experts, G = expert groups, K = experts per token.
 */
public record BailingMoeV2Config(
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
        double rmsNormEps,
        double ropeTheta,
        double partialRotaryFactor,
        RopeScaling ropeScaling,
        int maxPositionEmbeddings,
        boolean tieWordEmbeddings,
        boolean useQkvBias,
        boolean useBias,
        boolean useQkNorm,
        boolean useRmsnorm,
        int numExperts,
        int numExpertsPerTok,
        int numSharedExperts,
        int moeIntermediateSize,
        Integer moeSharedExpertIntermediateSize,
        int firstKDenseReplace,
        boolean normTopkProb,
        int nGroup,
        int topkGroup,
        double routedScalingFactor,
        String scoreFunction,
        boolean moeRouterEnableExpertBias,
        String routerDtype,
        int numNextnPredictLayers,
        double mtpLossScalingFactor,
        Integer bosTokenId,
        Integer eosTokenId,
        Integer padTokenId,
        String torchDtype,
        int maxWindowLayers,
        double initializerRange,
        double embeddingDropout,
        double attentionDropout,
        double outputDropout,
        boolean useCache) implements ModelConfig {

    public static final String ARCHITECTURE = "BailingMoeV2ForCausalLM";
    /** The one architecture this record accepts ({@link ModelConfig#load} also takes BailingMoe v1). */
    private static final List<String> SUPPORTED = List.of(ARCHITECTURE);

    public BailingMoeV2Config {
        architectures = List.copyOf(architectures);
        if (!modelType.equals("bailing_moe") && !modelType.equals("bailing_moe_v2")) {
            throw new ConfigException("model_type \"" + modelType + "\" is not supported (expected \"bailing_moe\" or \"bailing_moe_v2\")");
        }
        if (!architectures.isEmpty() && !architectures.getFirst().equals(ARCHITECTURE)) {
            throw new ConfigException("architectures[0] \"" + architectures.getFirst() + "\" is not supported (supported: " + String.join(", ", SUPPORTED) + ")");
        }
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numHiddenLayers);
        positive("num_attention_heads", numAttentionHeads);
        positive("num_key_value_heads", numKeyValueHeads);
        positive("head_dim", headDim);
        positive("max_position_embeddings", maxPositionEmbeddings);
        positive("num_experts", numExperts);
        positive("num_experts_per_tok", numExpertsPerTok);
        positive("moe_intermediate_size", moeIntermediateSize);
        positive("n_group", nGroup);
        positive("topk_group", topkGroup);
        if (numSharedExperts < 0) {
            throw new ConfigException("num_shared_experts (" + numSharedExperts + ") must be >= 0");
        }
        if (moeSharedExpertIntermediateSize != null) {
            positive("moe_shared_expert_intermediate_size", moeSharedExpertIntermediateSize);
        }
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw new ConfigException("num_attention_heads (" + numAttentionHeads + ") is not divisible by num_key_value_heads (" + numKeyValueHeads + ")");
        }
        if (!(partialRotaryFactor > 0 && partialRotaryFactor <= 1)) {
            throw new ConfigException("partial_rotary_factor (" + partialRotaryFactor + ") must be in (0, 1]");
        }
        int rotary = (int) (headDim * partialRotaryFactor);
        if (rotary < 2 || rotary % 2 != 0) {
            throw new ConfigException("head_dim (" + headDim + ") * partial_rotary_factor (" + partialRotaryFactor + ") = " + rotary + " rotary dims; must be even and >= 2");
        }
        if (!(ropeTheta > 0)) {
            throw new ConfigException("rope_theta (" + ropeTheta + ") must be > 0");
        }
        if (!(rmsNormEps > 0)) {
            throw new ConfigException("rms_norm_eps (" + rmsNormEps + ") must be > 0");
        }
        if (numExperts % nGroup != 0) {
            throw new ConfigException("num_experts (" + numExperts + ") is not divisible by n_group (" + nGroup + ")");
        }
        if (topkGroup > nGroup) {
            throw new ConfigException("topk_group (" + topkGroup + ") is larger than n_group (" + nGroup + ")");
        }
        if (numExpertsPerTok > topkGroup * (numExperts / nGroup)) {
            throw new ConfigException("num_experts_per_tok (" + numExpertsPerTok + ") is larger than the experts in topk_group ("
                    + topkGroup + ") groups of " + (numExperts / nGroup));
        }
        if (numExperts / nGroup < 2 && nGroup > 1) {
            throw new ConfigException("num_experts (" + numExperts + ") / n_group (" + nGroup + ") must leave at least 2 experts per group (group score = sum of its top 2)");
        }
        if (firstKDenseReplace < 0 || firstKDenseReplace > numHiddenLayers) {
            throw new ConfigException("first_k_dense_replace (" + firstKDenseReplace + ") must be in [0, num_hidden_layers (" + numHiddenLayers + ")]");
        }
        if (!hiddenAct.equals("silu")) {
            throw new ConfigException("hidden_act \"" + hiddenAct + "\" is not supported (only \"silu\")");
        }
        if (!scoreFunction.equals("sigmoid")) {
            throw new ConfigException("score_function \"" + scoreFunction + "\" is not supported (BailingMoeV2 routes with \"sigmoid\")");
        }
        if (useQkvBias) {
            throw new ConfigException("use_qkv_bias true is not supported (Ring-mini-2.0 has no attention biases)");
        }
        if (useBias) {
            throw new ConfigException("use_bias true is not supported (Ring-mini-2.0 has no linear biases)");
        }
        if (!useRmsnorm) {
            throw new ConfigException("use_rmsnorm false is not supported (only RMSNorm q/k norms)");
        }
        if (!(routedScalingFactor > 0)) {
            throw new ConfigException("routed_scaling_factor (" + routedScalingFactor + ") must be > 0");
        }
        if (numNextnPredictLayers < 0) {
            throw new ConfigException("num_nextn_predict_layers (" + numNextnPredictLayers + ") must be >= 0");
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

    /** Leading dims of each head that RoPE rotates; the rest pass through. */
    public int rotaryDim() {
        return (int) (headDim * partialRotaryFactor);
    }

    public int expertsPerGroup() {
        return numExperts / nGroup;
    }

    /** Intermediate width of the (fused) shared expert MLP, 0 when there is none. */
    public int sharedExpertIntermediateSize() {
        int per = moeSharedExpertIntermediateSize != null ? moeSharedExpertIntermediateSize : moeIntermediateSize;
        return per * numSharedExperts;
    }

    /** Parameters of the main model (no MTP layers). */
    public long parameterCount() {
        long d = hiddenSize;
        long attention = (long) qkvDim() * d + (long) queryDim() * d + 2L * d + (useQkNorm ? 2L * headDim : 0);
        long dense = 3L * intermediateSize * d;
        long expert = 3L * moeIntermediateSize * d;
        long moe = (long) numExperts * d + numExperts + numExperts * expert + 3L * sharedExpertIntermediateSize() * d;
        int moeLayers = numHiddenLayers - firstKDenseReplace;
        long embed = (long) vocabSize * d;
        return embed * (tieWordEmbeddings ? 1 : 2) + d + numHiddenLayers * attention
                + (long) firstKDenseReplace * dense + (long) moeLayers * moe;
    }

    // ---- loading -----------------------------------------------------------------------------------

    public static BailingMoeV2Config load(Path configJson) {
        return parseNamingSource(JsonFields.read(configJson));
    }

    public static BailingMoeV2Config parse(String source, String json) {
        return parseNamingSource(JsonFields.parse(source, json));
    }

    /** Every message starts with the file name, whichever check raised it. */
    static BailingMoeV2Config parseNamingSource(JsonFields f) {
        return f.namingSource(BailingMoeV2Config::parse);
    }

    private static BailingMoeV2Config parse(JsonFields f) {
        if (!f.has("model_type")) {
            throw new ConfigException("model_type is missing (expected \"bailing_moe\")");
        }
        int hidden = f.intOr("hidden_size", 2048);
        int heads = f.intOr("num_attention_heads", 16);
        int maxPos = f.intOr("max_position_embeddings", 32768);
        List<Integer> eos = f.intOrIntList("eos_token_id");
        return new BailingMoeV2Config(
                f.stringList("architectures"),
                f.stringOr("model_type", ""),
                f.intOr("vocab_size", 157184),
                hidden,
                f.intOr("intermediate_size", 5120),
                f.intOr("num_hidden_layers", 20),
                heads,
                f.intOr("num_key_value_heads", 4),
                // head_dim: null in JSON means hidden / heads, as the attention module computes it
                f.node("head_dim") != null && f.node("head_dim").isNull() ? hidden / heads : f.intOr("head_dim", 128),
                f.stringOr("hidden_act", "silu"),
                f.doubleOr("rms_norm_eps", 1e-6),
                f.doubleOr("rope_theta", 600000.0),
                f.doubleOr("partial_rotary_factor", 0.5),
                RopeScaling.parse(f.object("rope_scaling"), maxPos),
                maxPos,
                f.boolOr("tie_word_embeddings", false),
                f.boolOr("use_qkv_bias", false),
                f.boolOr("use_bias", false),
                f.boolOr("use_qk_norm", true),
                f.boolOr("use_rmsnorm", true),
                f.intOr("num_experts", 256),
                f.intOr("num_experts_per_tok", 8),
                f.intOr("num_shared_experts", 1),
                f.intOr("moe_intermediate_size", 512),
                f.intOrNull("moe_shared_expert_intermediate_size"),
                f.intOr("first_k_dense_replace", 1),
                f.boolOr("norm_topk_prob", true),
                f.intOr("n_group", 8),
                f.intOr("topk_group", 4),
                f.doubleOr("routed_scaling_factor", 1.0),
                f.stringOr("score_function", "sigmoid"),
                f.boolOr("moe_router_enable_expert_bias", true),
                f.stringOr("router_dtype", "fp32"),
                f.intOr("num_nextn_predict_layers", 0),
                f.doubleOr("mtp_loss_scaling_factor", 0),
                f.intOrNull("bos_token_id"),
                eos.isEmpty() ? 156892 : eos.getFirst(),
                f.has("pad_token_id") ? f.intOr("pad_token_id", 0) : 156892,
                f.stringOr("torch_dtype", f.stringOr("dtype", "bfloat16")),
                f.intOr("max_window_layers", 20),
                f.doubleOr("initializer_range", 0.02),
                f.doubleOr("embedding_dropout", 0.0),
                f.doubleOr("attention_dropout", 0.0),
                f.doubleOr("output_dropout", 0.0),
                f.boolOr("use_cache", true));
    }

    /** The Ring-mini-2.0 shape (docs/MODEL.md §1), used for synthetic-weight benchmarks. */
    public static BailingMoeV2Config ringMini20() {
        return new BailingMoeV2Config(List.of(ARCHITECTURE), "bailing_moe", 157184, 2048, 5120, 20, 16, 4, 128, "silu",
                1e-6, 600000.0, 0.5, null, 32768, false, false, false, true, true, 256, 8, 1, 512, 512, 1, true, 8, 4, 2.5,
                "sigmoid", true, "fp32", 0, 0, null, 156892, 156892, "bfloat16", 20, 0.02, 0, 0, 0, true);
    }

    /** A copy with another shape; the rest (norms, RoPE, routing rules) unchanged. */
    public BailingMoeV2Config withShape(int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads, int headDim,
                                        int experts, int topK, int groups, int topkGroups, int moeIntermediate, int maxPositions) {
        return new BailingMoeV2Config(architectures, modelType, vocab, hidden, intermediate, layers, heads, kvHeads, headDim, hiddenAct,
                rmsNormEps, ropeTheta, partialRotaryFactor, ropeScaling, maxPositions, tieWordEmbeddings, useQkvBias, useBias, useQkNorm,
                useRmsnorm, experts, topK, numSharedExperts, moeIntermediate, moeIntermediate, firstKDenseReplace, normTopkProb, groups,
                topkGroups, routedScalingFactor, scoreFunction, moeRouterEnableExpertBias, routerDtype, numNextnPredictLayers,
                mtpLossScalingFactor, bosTokenId, Math.min(eosTokenId, vocab - 1), padTokenId == null ? null : Math.min(padTokenId, vocab - 1),
                torchDtype, maxWindowLayers, initializerRange, embeddingDropout, attentionDropout, outputDropout, useCache);
    }

    /** A copy with other special-token ids (bos, eos, pad). */
    public BailingMoeV2Config withTokens(Integer bos, Integer eos, Integer pad) {
        return new BailingMoeV2Config(architectures, modelType, vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, hiddenAct, rmsNormEps, ropeTheta, partialRotaryFactor, ropeScaling, maxPositionEmbeddings,
                tieWordEmbeddings, useQkvBias, useBias, useQkNorm, useRmsnorm, numExperts, numExpertsPerTok, numSharedExperts,
                moeIntermediateSize, moeSharedExpertIntermediateSize, firstKDenseReplace, normTopkProb, nGroup, topkGroup,
                routedScalingFactor, scoreFunction, moeRouterEnableExpertBias, routerDtype, numNextnPredictLayers, mtpLossScalingFactor,
                bos, eos, pad, torchDtype, maxWindowLayers, initializerRange, embeddingDropout, attentionDropout, outputDropout, useCache);
    }

    /** Writes this config as Hugging Face {@code config.json} text. */
    public String toJson() {
        List<String> kv = new ArrayList<>();
        kv.add(q("architectures") + ": [" + String.join(", ", architectures.stream().map(BailingMoeV2Config::q).toList()) + "]");
        kv.add(q("model_type") + ": " + q(modelType));
        kv.add(q("vocab_size") + ": " + vocabSize);
        kv.add(q("hidden_size") + ": " + hiddenSize);
        kv.add(q("intermediate_size") + ": " + intermediateSize);
        kv.add(q("num_hidden_layers") + ": " + numHiddenLayers);
        kv.add(q("num_attention_heads") + ": " + numAttentionHeads);
        kv.add(q("num_key_value_heads") + ": " + numKeyValueHeads);
        kv.add(q("head_dim") + ": " + headDim);
        kv.add(q("hidden_act") + ": " + q(hiddenAct));
        kv.add(q("rms_norm_eps") + ": " + rmsNormEps);
        kv.add(q("rope_theta") + ": " + ropeTheta);
        kv.add(q("partial_rotary_factor") + ": " + partialRotaryFactor);
        kv.add(q("rope_scaling") + ": " + (ropeScaling == null ? "null"
                : "{\"type\": \"yarn\", \"factor\": " + ropeScaling.factor() + ", \"original_max_position_embeddings\": "
                + ropeScaling.originalMaxPositionEmbeddings() + ", \"beta_fast\": " + ropeScaling.betaFast() + ", \"beta_slow\": "
                + ropeScaling.betaSlow() + "}"));
        kv.add(q("max_position_embeddings") + ": " + maxPositionEmbeddings);
        kv.add(q("tie_word_embeddings") + ": " + tieWordEmbeddings);
        kv.add(q("use_qkv_bias") + ": " + useQkvBias);
        kv.add(q("use_bias") + ": " + useBias);
        kv.add(q("use_qk_norm") + ": " + useQkNorm);
        kv.add(q("use_rmsnorm") + ": " + useRmsnorm);
        kv.add(q("num_experts") + ": " + numExperts);
        kv.add(q("num_experts_per_tok") + ": " + numExpertsPerTok);
        kv.add(q("num_shared_experts") + ": " + numSharedExperts);
        kv.add(q("moe_intermediate_size") + ": " + moeIntermediateSize);
        if (moeSharedExpertIntermediateSize != null) {
            kv.add(q("moe_shared_expert_intermediate_size") + ": " + moeSharedExpertIntermediateSize);
        }
        kv.add(q("first_k_dense_replace") + ": " + firstKDenseReplace);
        kv.add(q("norm_topk_prob") + ": " + normTopkProb);
        kv.add(q("n_group") + ": " + nGroup);
        kv.add(q("topk_group") + ": " + topkGroup);
        kv.add(q("routed_scaling_factor") + ": " + routedScalingFactor);
        kv.add(q("score_function") + ": " + q(scoreFunction));
        kv.add(q("moe_router_enable_expert_bias") + ": " + moeRouterEnableExpertBias);
        kv.add(q("router_dtype") + ": " + q(routerDtype));
        kv.add(q("num_nextn_predict_layers") + ": " + numNextnPredictLayers);
        if (bosTokenId != null) {
            kv.add(q("bos_token_id") + ": " + bosTokenId);
        }
        kv.add(q("eos_token_id") + ": " + eosTokenId);
        if (padTokenId != null) {
            kv.add(q("pad_token_id") + ": " + padTokenId);
        }
        kv.add(q("torch_dtype") + ": " + q(torchDtype));
        kv.add(q("use_cache") + ": " + useCache);
        return "{\n  " + String.join(",\n  ", kv) + "\n}\n";
    }

    private static String q(String s) {
        return '"' + s.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
    }
}
