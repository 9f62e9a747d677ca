package io.ringserve.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import tools.jackson.databind.JsonNode;

/** Checks encode/decode against outputs recorded from the reference implementation. */
class TokenizerGoldenTest {

    private static Tokenizer tokenizer;

    @BeforeAll
    static void load() {
        tokenizer = Tokenizer.load(GoldenFiles.tokenizerJson());
    }

    static Stream<Arguments> cases() {
        return StreamSupport.stream(GoldenFiles.expected().get("cases").spliterator(), false)
                .map(c -> Arguments.of(c.get("text").stringValue(), c));
    }

    static Stream<Arguments> chats() {
        return StreamSupport.stream(GoldenFiles.expected().get("chat").spliterator(), false)
                .map(c -> Arguments.of(c.get("rendered").stringValue(), c));
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @MethodSource("cases")
    void encodesToTheRecordedIds(String text, JsonNode expected) {
        assertArrayEquals(GoldenFiles.ints(expected.get("ids")), tokenizer.encode(text));
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @MethodSource("cases")
    void convertsIdsToTheRecordedTokens(String text, JsonNode expected) {
        List<String> tokens = StreamSupport.stream(expected.get("tokens").spliterator(), false)
                .map(JsonNode::stringValue).toList();
        assertEquals(tokens, tokenizer.tokens(GoldenFiles.ints(expected.get("ids"))));
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @MethodSource("cases")
    void decodesToTheRecordedTextBothWays(String text, JsonNode expected) {
        int[] ids = GoldenFiles.ints(expected.get("ids"));
        assertEquals(expected.get("decoded").stringValue(), tokenizer.decode(ids, false));
        assertEquals(expected.get("decoded_skip_special").stringValue(), tokenizer.decode(ids, true));
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @MethodSource("chats")
    void encodesRenderedChatPrompts(String rendered, JsonNode expected) {
        assertArrayEquals(GoldenFiles.ints(expected.get("ids")), tokenizer.encode(rendered));
    }

    @Test
    void reportsVocabularySizeAndSpecialTokens() {
        JsonNode expected = GoldenFiles.expected();
        assertEquals(expected.get("vocab_size").intValue(), tokenizer.vocabSize());
        for (Map.Entry<String, JsonNode> e : expected.get("special_tokens").properties()) {
            int id = e.getValue().intValue();
            assertEquals(id, tokenizer.tokenId(e.getKey()).orElseThrow(), e.getKey());
            assertTrue(tokenizer.isSpecial(id), e.getKey());
            assertArrayEquals(e.getKey().getBytes(java.nio.charset.StandardCharsets.UTF_8), tokenizer.tokenBytes(id));
        }
        assertFalse(tokenizer.isSpecial(0));
        assertFalse(tokenizer.isSpecial(-1));
        assertFalse(tokenizer.isSpecial(tokenizer.vocabSize()));
    }

    @Test
    void looksUpModelTokens() {
        assertEquals(280, tokenizer.tokenId("Ġw").orElseThrow());
        assertTrue(tokenizer.tokenId("no such token").isEmpty());
        assertArrayEquals(" w".getBytes(java.nio.charset.StandardCharsets.UTF_8), tokenizer.tokenBytes(280));
    }

    @Test
    void hashesTheFileBytes() throws Exception {
        byte[] bytes = Files.readAllBytes(GoldenFiles.tokenizerJson());
        String expected = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        assertEquals(expected, tokenizer.sha256());
        assertEquals(expected, Tokenizer.fromDirectory(GoldenFiles.tokenizerJson().getParent()).sha256());
    }

    @Test
    void encodesTheSameWhenCalledAgain() {
        // the second call is served from the word cache
        String text = "The quick brown fox 🙂 中文分词 <role>HUMAN</role>";
        assertArrayEquals(tokenizer.encode(text), tokenizer.encode(text));
    }
}
