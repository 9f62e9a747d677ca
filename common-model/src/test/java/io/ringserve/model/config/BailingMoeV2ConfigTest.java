package io.ringserve.model.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BailingMoeV2ConfigTest {

    static Path fixture() throws Exception {
        return Path.of(BailingMoeV2ConfigTest.class.getResource("/golden/tiny-ring-a").toURI());
    }

    @Test
    void readsTheTinyCheckpointConfig() throws Exception {
        BailingMoeV2Config c = (BailingMoeV2Config) ModelConfig.load(fixture());
        assertEquals("bailing_moe", c.modelType());
        assertEquals(List.of("BailingMoeV2ForCausalLM"), c.architectures());
        assertEquals(64, c.hiddenSize());
        assertEquals(3, c.numHiddenLayers());
        assertEquals(16, c.headDim());
        assertEquals(8, c.rotaryDim());
        assertEquals(64, c.queryDim());
        assertEquals(32, c.kvDim());
        assertEquals(128, c.qkvDim());
        assertEquals(2, c.queriesPerKvHead());
        assertEquals(4, c.expertsPerGroup());
        assertFalse(c.isMoeLayer(0));
        assertTrue(c.isMoeLayer(1));
        assertEquals(2.5, c.routedScalingFactor());
        assertEquals(32, c.sharedExpertIntermediateSize());
        assertNull(c.ropeScaling());
        assertEquals(1537, c.eosTokenId());
    }

    @Test
    void absentKeysTakeHuggingFaceDefaults() {
        BailingMoeV2Config c = BailingMoeV2Config.parse("config.json", "{\"model_type\": \"bailing_moe_v2\"}");
        assertEquals(157184, c.vocabSize());
        assertEquals(2048, c.hiddenSize());
        assertEquals(20, c.numHiddenLayers());
        assertEquals(128, c.headDim());
        assertEquals(64, c.rotaryDim());
        assertEquals(256, c.numExperts());
        assertEquals(8, c.nGroup());
        assertEquals(4, c.topkGroup());
        // the configuration class defaults to 1.0; the Ring-mini-2.0 checkpoint says 2.5
        assertEquals(1.0, c.routedScalingFactor());
        assertEquals(600000.0, c.ropeTheta());
        assertEquals(156892, c.eosTokenId());
    }

    @Test
    void ringMiniPresetHasThePublishedParameterCount() {
        BailingMoeV2Config c = BailingMoeV2Config.ringMini20();
        assertEquals(16_255_643_392L, c.parameterCount());
        assertEquals(40_960L, c.kvBytesPerToken(2));
        assertEquals(2.5, c.routedScalingFactor());
    }

    @Test
    void configRoundTripsThroughItsJson() {
        BailingMoeV2Config c = BailingMoeV2Config.ringMini20();
        assertEquals(c, BailingMoeV2Config.parse("config.json", c.toJson()));
    }

    @Test
    void invalidGroupingNamesBothKeys() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> BailingMoeV2Config.parse("x/config.json", "{\"model_type\": \"bailing_moe\", \"num_experts\": 24, \"n_group\": 5}"));
        assertEquals("x/config.json: num_experts (24) is not divisible by n_group (5)", e.getMessage());
    }

    @Test
    void topkGroupLargerThanGroupsIsRefused() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> BailingMoeV2Config.parse("c.json", "{\"model_type\": \"bailing_moe\", \"n_group\": 4, \"topk_group\": 5, \"num_experts\": 16}"));
        assertTrue(e.getMessage().contains("topk_group (5) is larger than n_group (4)"), e.getMessage());
    }

    @Test
    void otherArchitecturesAreRefusedClearly() {
        ConfigException llama = assertThrows(ConfigException.class, () -> BailingMoeV2Config.parse("c.json", "{\"model_type\": \"llama\"}"));
        assertTrue(llama.getMessage().contains("model_type \"llama\" is not supported"), llama.getMessage());
        ConfigException v1 = assertThrows(ConfigException.class,
                () -> BailingMoeV2Config.parse("c.json", "{\"model_type\": \"bailing_moe\", \"architectures\": [\"BailingMoeForCausalLM\"]}"));
        assertTrue(v1.getMessage().contains("architectures[0] \"BailingMoeForCausalLM\" is not supported (supported: BailingMoeV2ForCausalLM)"),
                v1.getMessage());
        ConfigException missing = assertThrows(ConfigException.class, () -> BailingMoeV2Config.parse("c.json", "{}"));
        assertTrue(missing.getMessage().contains("model_type is missing"), missing.getMessage());
    }

    @Test
    void wrongTypesNameTheKey() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> BailingMoeV2Config.parse("c.json", "{\"model_type\": \"bailing_moe\", \"hidden_size\": \"big\"}"));
        assertEquals("c.json: hidden_size must be an integer, got \"big\"", e.getMessage());
        ConfigException notJson = assertThrows(ConfigException.class, () -> BailingMoeV2Config.parse("c.json", "{\"model_type\": "));
        assertTrue(notJson.getMessage().startsWith("c.json: not valid JSON"), notJson.getMessage());
    }

    @Test
    void missingFileIsNamed(@TempDir Path dir) {
        ConfigException e = assertThrows(ConfigException.class, () -> ModelConfig.load(dir));
        assertEquals(dir.resolve("config.json") + ": file not found", e.getMessage());
    }

    @Test
    void yarnScalingIsParsed() {
        BailingMoeV2Config c = BailingMoeV2Config.parse("c.json", """
                {"model_type": "bailing_moe", "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}""");
        assertEquals(4.0, c.ropeScaling().factor());
        assertEquals(32768, c.ropeScaling().originalMaxPositionEmbeddings());
        assertEquals(1.1386294, c.ropeScaling().attentionFactor(), 1e-7);
        ConfigException e = assertThrows(ConfigException.class, () -> BailingMoeV2Config.parse("c.json",
                "{\"model_type\": \"bailing_moe\", \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2}}"));
        assertTrue(e.getMessage().contains("rope_type \"dynamic\" is not supported"), e.getMessage());
    }

    @Test
    void generationConfigTakesAnIntOrAListOfEosIds(@TempDir Path dir) throws Exception {
        assertEquals(List.of(1537, 1540), GenerationConfig.load(fixture()).eosTokenIds());
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": 7, \"top_p\": 0.95}");
        GenerationConfig g = GenerationConfig.load(dir);
        assertEquals(List.of(7), g.eosTokenIds());
        assertEquals(0.95, g.topP());
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": \"x\"}");
        ConfigException e = assertThrows(ConfigException.class, () -> GenerationConfig.load(dir));
        assertTrue(e.getMessage().contains("eos_token_id must be an integer or a list of integers"), e.getMessage());
    }
}
