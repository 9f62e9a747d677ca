package io.ringserve.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class IncrementalDetokenizerTest {

    private static Tokenizer tokenizer;

    @BeforeAll
    static void load() {
        tokenizer = Tokenizer.load(GoldenFiles.tokenizerJson());
    }

    /** Streams ids one by one and checks every chunk is whole and the total equals a full decode. */
    private static void assertStreamsLikeDecode(int[] ids, boolean skip) {
        IncrementalDetokenizer detok = tokenizer.detokenizer(skip);
        StringBuilder streamed = new StringBuilder();
        for (int id : ids) {
            String chunk = detok.add(id);
            if (!chunk.isEmpty()) {
                assertFalse(Character.isHighSurrogate(chunk.charAt(chunk.length() - 1)), "chunk splits a surrogate pair");
                assertFalse(Character.isLowSurrogate(chunk.charAt(0)), "chunk starts inside a surrogate pair");
            }
            streamed.append(chunk);
        }
        streamed.append(detok.flush());
        assertEquals(tokenizer.decode(ids, skip), streamed.toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "emoji 🙂🚀 and 🇨🇳 flags 👩‍👩‍👧 family",
            "中文分词测试，你好世界。日本語のテキスト 한국어",
            "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math 𝐀𝐁𝐂 ∑∫",
            "<role>HUMAN</role>Hi 🙂<|endoftext|>more",
            "plain ascii text",
            ""})
    void streamedTextEqualsFullDecode(String text) {
        int[] ids = tokenizer.encode(text);
        assertStreamsLikeDecode(ids, false);
        assertStreamsLikeDecode(ids, true);
        IncrementalDetokenizer detok = tokenizer.detokenizer(false);
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            sb.append(detok.add(id));
        }
        assertEquals("", detok.flush(), "nothing should be held back after complete text");
        assertEquals(text, sb.toString());
    }

    @Test
    void holdsBackAnEmojiUntilItsLastByte() {
        int[] ids = tokenizer.encode("🙂");
        assertTrue(ids.length > 1, "the fixture vocabulary spells this emoji with several tokens");
        IncrementalDetokenizer detok = tokenizer.detokenizer(false);
        for (int i = 0; i < ids.length - 1; i++) {
            assertEquals("", detok.add(ids[i]));
        }
        assertEquals("🙂", detok.add(ids[ids.length - 1]));
        assertEquals("", detok.flush());
    }

    @Test
    void flushTurnsAnIncompleteCharacterIntoOneReplacement() {
        int[] ids = tokenizer.encode("🙂");
        IncrementalDetokenizer detok = tokenizer.detokenizer(false);
        assertEquals("", detok.add(ids[0]));
        assertEquals("\uFFFD", detok.flush());
        assertEquals("\uFFFD", tokenizer.decode(new int[]{ids[0]}, false));
    }

    @Test
    void skippedSpecialTokensAddNothing() {
        int special = tokenizer.tokenId("<|endoftext|>").orElseThrow();
        IncrementalDetokenizer skipping = tokenizer.detokenizer(true);
        assertEquals("", skipping.add(special));
        IncrementalDetokenizer keeping = tokenizer.detokenizer(false);
        assertEquals("<|endoftext|>", keeping.add(special));
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 42, 1234})
    void randomIdSequencesStreamLikeDecode(long seed) {
        Random random = new Random(seed);
        for (int round = 0; round < 200; round++) {
            int[] ids = random.ints(random.nextInt(40), 0, tokenizer.vocabSize()).toArray();
            assertStreamsLikeDecode(ids, false);
            assertStreamsLikeDecode(ids, true);
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {7, 99})
    void randomSingleByteTokensStreamLikeDecode(long seed) {
        // single-byte tokens give every mix of lead, continuation and invalid bytes
        int[] byteTokens = new int[256];
        for (int b = 0; b < 256; b++) {
            byteTokens[b] = tokenizer.tokenId(String.valueOf(ByteLevel.charOf(b))).orElseThrow();
        }
        int[] leadsAndContinuations = {0xC3, 0xE2, 0xF0, 0xF4, 0xED, 0x80, 0x9F, 0xBF, 0xA0, 0x41, 0xFF, 0xC0};
        Random random = new Random(seed);
        for (int round = 0; round < 500; round++) {
            int[] ids = new int[random.nextInt(12)];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = byteTokens[random.nextBoolean()
                        ? leadsAndContinuations[random.nextInt(leadsAndContinuations.length)] : random.nextInt(256)];
            }
            assertStreamsLikeDecode(ids, false);
        }
    }

    @Test
    void unknownIdsAreIgnoredLikeInDecode() {
        int[] ids = {-5, tokenizer.tokenId("H").orElseThrow(), tokenizer.vocabSize() + 10};
        assertStreamsLikeDecode(ids, false);
        assertEquals("H", tokenizer.decode(ids, false));
    }
}
