package io.ringserve.model.config;

import java.nio.file.Path;
import java.util.List;

/**
 * The architectures ring-serve can run, one record each; {@link #load(Path)} dispatches on config.json's
 * {@code architectures[0]} (both BailingMoe versions say {@code model_type: "bailing_moe"}, so the model
 * type cannot tell them apart).
 *
 * <p>The accessors here are what an engine needs whatever the version; what only one version has (the V2
 * router's groups and expert bias, V1's {@code norm_head}) stays on its record, and engines reach it by
 * switching over the sealed type.
 *
 * <p>Legend used by the derived values: D = hidden, H = query heads, Hkv = KV heads, d = head dim.
 */
public sealed interface ModelConfig permits BailingMoeV2Config, BailingMoeConfig {

    /** The {@code architectures[0]} values {@link #load(Path)} accepts, V2 first. */
    List<String> SUPPORTED_ARCHITECTURES = List.of(BailingMoeV2Config.ARCHITECTURE, BailingMoeConfig.ARCHITECTURE);

    /** The {@code architectures[0]} value this record describes. */
    String architecture();

    /** {@code architectures} as written in config.json (may be empty). */
    List<String> architectures();

    String modelType();

    int vocabSize();

    int hiddenSize();

    /** Intermediate width of the dense SwiGLU MLP of the layers below {@code first_k_dense_replace}. */
    int intermediateSize();

    int numHiddenLayers();

    int numAttentionHeads();

    int numKeyValueHeads();

    int headDim();

    double rmsNormEps();

    double ropeTheta();

    /** YaRN settings, or null for plain RoPE. */
    RopeScaling ropeScaling();

    int maxPositionEmbeddings();

    boolean tieWordEmbeddings();

    /** Per-head RMSNorm of q and k before RoPE ({@code query_layernorm} / {@code key_layernorm} tensors). */
    boolean useQkNorm();

    int numExperts();

    int numExpertsPerTok();

    int numSharedExperts();

    int moeIntermediateSize();

    int firstKDenseReplace();

    boolean normTopkProb();

    Integer bosTokenId();

    Integer eosTokenId();

    Integer padTokenId();

    /** Leading dims of each head that RoPE rotates; the rest pass through. */
    int rotaryDim();

    /** Intermediate width of the (fused) shared expert MLP, 0 when there is none. */
    int sharedExpertIntermediateSize();

    /** Parameters of the main model (no MTP layers). */
    long parameterCount();

    /** Writes this config as Hugging Face {@code config.json} text. */
    String toJson();

    /** A copy with other special-token ids (bos, eos, pad). */
    ModelConfig withTokens(Integer bos, Integer eos, Integer pad);

    // ---- derived values shared by both versions ------------------------------------------------------

    /** H*d: width of the query block of the fused projection. */
    default int queryDim() {
        return numAttentionHeads() * headDim();
    }

    /** Hkv*d: width of the K block and of the V block. */
    default int kvDim() {
        return numKeyValueHeads() * headDim();
    }

    /** Rows of {@code query_key_value.weight}: Q | K | V. */
    default int qkvDim() {
        return queryDim() + 2 * kvDim();
    }

    /** Longest prompt + generated tokens one sequence may have: max_position_embeddings, YaRN-extended when configured. */
    default int contextLength() {
        int max = maxPositionEmbeddings();
        if (ropeScaling() != null) {
            max = Math.max(max, (int) Math.min(Integer.MAX_VALUE / 2,
                    (long) (ropeScaling().originalMaxPositionEmbeddings() * ropeScaling().factor())));
        }
        return max;
    }

    /** Query heads served by one KV head (GQA). */
    default int queriesPerKvHead() {
        return numAttentionHeads() / numKeyValueHeads();
    }

    /** Layers below {@code first_k_dense_replace} use the dense MLP, the others the MoE block. */
    default boolean isMoeLayer(int layer) {
        return layer >= firstKDenseReplace();
    }

    /** KV cache bytes per token for all layers at the given element size (2 for bf16). */
    default long kvBytesPerToken(int elementBytes) {
        return 2L * numHiddenLayers() * kvDim() * elementBytes;
    }

    // ---- loading -----------------------------------------------------------------------------------

    /** Reads {@code dir/config.json} and picks the record for its architecture. */
    static ModelConfig load(Path dir) {
        return parse(JsonFields.read(dir.resolve("config.json")));
    }

    /** Parses config.json text; {@code source} names it in error messages. */
    static ModelConfig parse(String source, String json) {
        return parse(JsonFields.parse(source, json));
    }

    private static ModelConfig parse(JsonFields f) {
        List<String> architectures = f.stringList("architectures");
        // without architectures, the V2 record decides (it names model_type problems first)
        if (architectures.isEmpty() || architectures.getFirst().equals(BailingMoeV2Config.ARCHITECTURE)) {
            return BailingMoeV2Config.parseNamingSource(f);
        }
        if (architectures.getFirst().equals(BailingMoeConfig.ARCHITECTURE)) {
            return BailingMoeConfig.parseNamingSource(f);
        }
        throw new ConfigException(f.source() + ": architectures[0] \"" + architectures.getFirst() + "\" is not supported (supported: "
                + String.join(", ", SUPPORTED_ARCHITECTURES) + ")");
    }
}
