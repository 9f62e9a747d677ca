package io.ringserve.model.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** BailingMoe v1 (Ring-lite) config.json, and the dispatch of {@link ModelConfig#load} over both versions. */
class BailingMoeConfigTest {

    static Path fixture() throws Exception {
        return Path.of(BailingMoeConfigTest.class.getResource("/golden/tiny-ring-lite-a").toURI());
    }

    /** The keys a v1 config needs besides model_type (those whose HF default cannot run). */
    static final String MINIMAL = """
            {"model_type": "bailing_moe", "architectures": ["BailingMoeForCausalLM"], "num_key_value_heads": 4,
             "use_bias": false, "moe_intermediate_size": 1408""";

    @Test
    void readsTheTinyV1CheckpointConfig() throws Exception {
        BailingMoeConfig c = assertInstanceOf(BailingMoeConfig.class, ModelConfig.load(fixture()));
        assertEquals("BailingMoeForCausalLM", c.architecture());
        assertEquals("bailing_moe", c.modelType());
        assertEquals(64, c.hiddenSize());
        assertEquals(2, c.numHiddenLayers());
        assertEquals(16, c.headDim());
        assertEquals(16, c.rotaryDim(), "full RoPE");
        assertFalse(c.useQkNorm());
        assertEquals(64, c.queryDim());
        assertEquals(32, c.kvDim());
        assertEquals(128, c.qkvDim());
        assertEquals(2, c.queriesPerKvHead());
        assertTrue(c.isMoeLayer(0));
        assertTrue(c.isMoeLayer(1));
        assertEquals(8, c.numExperts());
        assertEquals(3, c.numExpertsPerTok());
        assertEquals(48, c.sharedExpertIntermediateSize(), "two shared experts of 24 fused");
        assertTrue(c.normHead());
        assertTrue(c.normTopkProb());
        assertEquals(1e-6, c.rmsNormEps());
        assertEquals(600000.0, c.ropeTheta());
        assertNull(c.ropeScaling());
        assertEquals(1537, c.eosTokenId());
        assertEquals(1536, c.bosTokenId());
        assertEquals(160, c.intermediateSize());
    }

    @Test
    void loadDispatchesOnArchitecturesNotModelType() throws Exception {
        Path v2 = Path.of(BailingMoeConfigTest.class.getResource("/golden/tiny-ring-a").toURI());
        assertInstanceOf(BailingMoeV2Config.class, ModelConfig.load(v2));
        assertInstanceOf(BailingMoeConfig.class, ModelConfig.load(fixture()));
        // the V2 loader keeps refusing v1, naming what it supports
        ConfigException e = assertThrows(ConfigException.class, () -> BailingMoeV2Config.load(fixture().resolve("config.json")));
        assertTrue(e.getMessage().contains("architectures[0] \"BailingMoeForCausalLM\" is not supported (supported: BailingMoeV2ForCausalLM)"),
                e.getMessage());
    }

    @Test
    void unknownArchitecturesAreRefusedListingTheSupportedOnes() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> ModelConfig.parse("c.json", "{\"model_type\": \"bailing_moe\", \"architectures\": [\"LlamaForCausalLM\"]}"));
        assertEquals("c.json: architectures[0] \"LlamaForCausalLM\" is not supported (supported: BailingMoeV2ForCausalLM, BailingMoeForCausalLM)",
                e.getMessage());
        ConfigException direct = assertThrows(ConfigException.class,
                () -> BailingMoeConfig.parse("c.json", MINIMAL.replace("BailingMoeForCausalLM", "BailingMoeV2ForCausalLM") + "}"));
        assertTrue(direct.getMessage().contains("supported: BailingMoeV2ForCausalLM, BailingMoeForCausalLM"), direct.getMessage());
    }

    @Test
    void absentKeysTakeTheV1ConfigurationClassDefaults() {
        BailingMoeConfig c = assertInstanceOf(BailingMoeConfig.class, ModelConfig.parse("config.json", MINIMAL + "}"));
        assertEquals(30592, c.vocabSize());
        assertEquals(1024, c.hiddenSize());
        assertEquals(24, c.numHiddenLayers());
        assertEquals(16, c.numAttentionHeads());
        assertEquals(64, c.headDim(), "hidden / heads");
        assertEquals(1e-5, c.rmsNormEps());
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(16384, c.maxPositionEmbeddings());
        assertFalse(c.normHead());
        assertFalse(c.tieWordEmbeddings());
        assertEquals(16, c.numExperts());
        assertEquals(2, c.numExpertsPerTok());
        assertEquals(0, c.numSharedExperts());
        assertEquals(0, c.sharedExpertIntermediateSize());
        assertEquals(0, c.firstKDenseReplace());
        assertEquals(0, c.intermediateSize(), "absent: no dense layers need it");
        assertTrue(c.normTopkProb());
        assertEquals(126081, c.padTokenId());
        assertNull(c.eosTokenId());
        assertNull(c.bosTokenId());
        assertEquals(0.1, c.embeddingDropout());
        assertEquals(28, c.maxWindowLayers());
        assertFalse(c.useSlidingWindow());
        assertEquals(4096, c.slidingWindow());
    }

    @Test
    void defaultsTheEngineCannotRunAreRefusedNamingTheKey() {
        String base = "{\"model_type\": \"bailing_moe\", \"architectures\": [\"BailingMoeForCausalLM\"]";
        ConfigException kv = assertThrows(ConfigException.class,
                () -> BailingMoeConfig.parse("c.json", base + ", \"use_bias\": false, \"moe_intermediate_size\": 8}"));
        assertEquals("c.json: num_key_value_heads (0) must be > 0 (BailingMoeConfig defaults it to 0 when absent)", kv.getMessage());
        ConfigException bias = assertThrows(ConfigException.class,
                () -> BailingMoeConfig.parse("c.json", base + ", \"num_key_value_heads\": 4, \"moe_intermediate_size\": 8}"));
        assertTrue(bias.getMessage().startsWith("c.json: use_bias true is not supported"), bias.getMessage());
        ConfigException moe = assertThrows(ConfigException.class,
                () -> BailingMoeConfig.parse("c.json", base + ", \"num_key_value_heads\": 4, \"use_bias\": false}"));
        assertEquals("c.json: moe_intermediate_size is missing (BailingMoeConfig has no default for it)", moe.getMessage());
    }

    @Test
    void invalidValuesNameTheirKeys() {
        assertMessage(MINIMAL + ", \"num_experts\": 4, \"num_experts_per_tok\": 6}", "num_experts_per_tok (6) is larger than num_experts (4)");
        assertMessage(MINIMAL + ", \"num_attention_heads\": 6}", "num_attention_heads (6) is not divisible by num_key_value_heads (4)");
        assertMessage(MINIMAL + ", \"head_dim\": 15}", "head_dim (15) must be even and >= 2 (RoPE rotates every head dim)");
        assertMessage(MINIMAL + ", \"first_k_dense_replace\": 1}", "intermediate_size is required when first_k_dense_replace (1) > 0");
        assertMessage(MINIMAL + ", \"use_sliding_window\": true}", "use_sliding_window true is not supported (only full causal attention)");
        assertMessage(MINIMAL + ", \"hidden_act\": \"gelu\"}", "hidden_act \"gelu\" is not supported (only \"silu\")");
        assertMessage(MINIMAL + ", \"rms_norm_eps\": 0}", "rms_norm_eps (0.0) must be > 0");
        assertMessage(MINIMAL + ", \"vocab_size\": 100, \"eos_token_id\": 126081}", "eos_token_id (126081) is outside the vocabulary [0, 100)");
        assertMessage(MINIMAL + ", \"hidden_size\": \"big\"}", "hidden_size must be an integer, got \"big\"");
        assertMessage(MINIMAL + ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}}", "rope_type \"linear\" is not supported");
        assertMessage(MINIMAL + ", \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4, \"mscale\": 0.707}}",
                "mscale / mscale_all_dim other than 1 / 0 are not supported");
    }

    private static void assertMessage(String json, String expected) {
        ConfigException e = assertThrows(ConfigException.class, () -> ModelConfig.parse("x/config.json", json));
        assertTrue(e.getMessage().startsWith("x/config.json") && e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void yarnIsParsedFromTheV1TypeKey() {
        BailingMoeConfig c = BailingMoeConfig.parse("c.json",
                MINIMAL + ", \"rope_scaling\": {\"factor\": 4.0, \"original_max_position_embeddings\": 32768, \"type\": \"yarn\"}}");
        assertEquals(4.0, c.ropeScaling().factor());
        assertEquals(1.1386294, c.ropeScaling().attentionFactor(), 1e-7);
    }

    @Test
    void ringLitePresetHasThePublishedParameterCounts() {
        BailingMoeConfig c = BailingMoeConfig.ringLite();
        assertEquals(16_801_974_272L, c.parameterCount());
        assertEquals(2_753_153_024L, c.activatedParameterCount());
        assertEquals(57_344L, c.kvBytesPerToken(2));
        assertEquals(2816, c.sharedExpertIntermediateSize());
        assertEquals(128, c.rotaryDim());
        assertEquals(3072, c.qkvDim());
        assertEquals(126081, c.eosTokenId());
    }

    @Test
    void configRoundTripsThroughItsJson() throws Exception {
        BailingMoeConfig preset = BailingMoeConfig.ringLite();
        assertEquals(preset, ModelConfig.parse("config.json", preset.toJson()));
        BailingMoeConfig tiny = (BailingMoeConfig) ModelConfig.load(fixture());
        assertEquals(tiny, BailingMoeConfig.parse("config.json", tiny.toJson()));
        BailingMoeConfig small = preset.withShape(1664, 64, 0, 2, 4, 2, 16, 8, 3, 2, 24, 512);
        assertEquals(small, BailingMoeConfig.parse("config.json", small.toJson()));
        assertEquals(1663, small.eosTokenId());
    }

    @Test
    void v1GenerationConfigIsReadAsForV2(@TempDir Path dir) throws Exception {
        assertEquals(List.of(1537, 1540), GenerationConfig.load(fixture()).eosTokenIds());
        Files.writeString(dir.resolve("generation_config.json"),
                "{\"_from_model_config\": true, \"eos_token_id\": 126081, \"pad_token_id\": 126081, \"transformers_version\": \"4.40.0\"}");
        assertEquals(List.of(126081), GenerationConfig.load(dir).eosTokenIds());
    }
}
