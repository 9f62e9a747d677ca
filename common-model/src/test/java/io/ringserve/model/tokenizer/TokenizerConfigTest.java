package io.ringserve.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerConfigTest {

    @TempDir
    Path dir;

    private Path write(String json) throws IOException {
        return Files.writeString(dir.resolve("tokenizer_config.json"), json);
    }

    @Test
    void readsTheGoldenConfig() {
        TokenizerConfig config = TokenizerConfig.load(GoldenFiles.path("tokenizer_config.json"));
        assertEquals("<|startoftext|>", config.bosToken());
        assertEquals("<|endoftext|>", config.eosToken());
        assertEquals("<|endoftext|>", config.padToken());
        assertEquals("[CLS]", config.clsToken());
        assertFalse(config.addBosToken());
        assertFalse(config.addEosToken());
        assertEquals(32768L, config.modelMaxLength());
        assertEquals("PreTrainedTokenizerFast", config.tokenizerClass());
        assertTrue(config.chatTemplate().startsWith("{% for message in messages %}"));
        assertEquals(Map.of("default", config.chatTemplate()), config.chatTemplates());
    }

    @Test
    void picksTheDefaultOfNamedTemplatesAndReadsTokenObjects() throws IOException {
        TokenizerConfig config = TokenizerConfig.load(write("""
                {"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}],
                 "bos_token": {"content": "<s>", "lstrip": false, "__type": "AddedToken"},
                 "eos_token": {"content": "</s>"}, "add_bos_token": true,
                 "model_max_length": 1000000000000000019884624838656}
                """));
        assertEquals("D", config.chatTemplate());
        assertEquals(Map.of("tool_use", "T", "default", "D"), config.chatTemplates());
        assertEquals("<s>", config.bosToken());
        assertEquals("</s>", config.eosToken());
        assertTrue(config.addBosToken());
        assertNull(config.modelMaxLength(), "the 'unbounded' sentinel is reported as absent");
    }

    @Test
    void missingFieldsAreNullOrFalse() throws IOException {
        TokenizerConfig config = TokenizerConfig.load(write("{}"));
        assertNull(config.chatTemplate());
        assertNull(config.bosToken());
        assertNull(config.eosToken());
        assertNull(config.padToken());
        assertNull(config.modelMaxLength());
        assertFalse(config.addBosToken());
        assertFalse(config.addEosToken());
        assertEquals(Map.of(), config.chatTemplates());
        assertNull(TokenizerConfig.load(write("{\"chat_template\": [{\"name\": \"x\", \"template\": \"X\"}]}")).chatTemplate());
    }

    @Test
    void rejectsMissingAndMalformedFiles() throws IOException {
        Path missing = dir.resolve("absent.json");
        UncheckedIOException io = assertThrows(UncheckedIOException.class, () -> TokenizerConfig.load(missing));
        assertTrue(io.getMessage().contains(missing.toString()));

        Path truncated = write("{\"bos_token\": \"<s");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TokenizerConfig.load(truncated));
        assertTrue(e.getMessage().contains(truncated.toString()), e.getMessage());

        Path wrongType = write("{\"eos_token\": 5}");
        e = assertThrows(IllegalArgumentException.class, () -> TokenizerConfig.load(wrongType));
        assertTrue(e.getMessage().contains(wrongType.toString()) && e.getMessage().contains("eos_token"), e.getMessage());

        Path badTemplate = write("{\"chat_template\": [{\"name\": \"default\"}]}");
        e = assertThrows(IllegalArgumentException.class, () -> TokenizerConfig.load(badTemplate));
        assertTrue(e.getMessage().contains("chat_template[0].template"), e.getMessage());
    }
}
