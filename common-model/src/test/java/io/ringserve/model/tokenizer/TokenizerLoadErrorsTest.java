package io.ringserve.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.UnaryOperator;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/** Malformed or unsupported tokenizer files fail with a message naming the file and the key. */
class TokenizerLoadErrorsTest {

    @TempDir
    Path dir;

    private Path write(String content) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, content, StandardCharsets.UTF_8);
        return file;
    }

    /** The golden tokenizer with one edit applied. */
    private Path goldenWith(UnaryOperator<ObjectNode> edit) throws IOException {
        ObjectNode root = (ObjectNode) GoldenFiles.JSON.readTree(GoldenFiles.tokenizerJson().toFile());
        return write(GoldenFiles.JSON.writeValueAsString(edit.apply(root)));
    }

    private IllegalArgumentException assertRejected(Path file, String key) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(key), e.getMessage());
        return e;
    }

    @Test
    void missingFile() {
        Path missing = dir.resolve("nope/tokenizer.json");
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> Tokenizer.load(missing));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
        assertThrows(UncheckedIOException.class, () -> Tokenizer.fromDirectory(dir.resolve("nope")));
    }

    @Test
    void truncatedJson() throws IOException {
        String golden = Files.readString(GoldenFiles.tokenizerJson());
        Path file = write(golden.substring(0, golden.length() / 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("Malformed JSON"), e.getMessage());
    }

    @Test
    void garbledJson() throws IOException {
        Path file = write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,, }}}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("model.vocab"), e.getMessage());
    }

    @Test
    void emptyFileAndNonObject() throws IOException {
        Path empty = write("");
        assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(empty));
        assertRejected(write("[1, 2]"), "<root>");
    }

    @Test
    void unsupportedModelType() throws IOException {
        assertRejected(goldenWith(r -> {
            ((ObjectNode) r.get("model")).put("type", "Unigram");
            return r;
        }), "model.type");
    }

    @Test
    void missingModelAndVocab() throws IOException {
        assertRejected(goldenWith(r -> {
            r.remove("model");
            return r;
        }), "model");
        assertRejected(goldenWith(r -> {
            ((ObjectNode) r.get("model")).remove("vocab");
            return r;
        }), "model.vocab");
    }

    @Test
    void badVocabId() throws IOException {
        assertRejected(goldenWith(r -> {
            ((ObjectNode) r.get("model").get("vocab")).put("!", "zero");
            return r;
        }), "model.vocab.!");
    }

    @Test
    void mergeWithUnknownToken() throws IOException {
        IllegalArgumentException e = assertRejected(goldenWith(r -> {
            ArrayNode merge = ((ArrayNode) r.get("model").get("merges").get(3));
            merge.set(1, "not-a-token");
            return r;
        }), "model.merges[3]");
        assertTrue(e.getMessage().contains("not-a-token"), e.getMessage());
    }

    @Test
    void malformedMergeEntry() throws IOException {
        assertRejected(goldenWith(r -> {
            ((ArrayNode) r.get("model").get("merges")).set(0, 17);
            return r;
        }), "model.merges[0]");
        assertRejected(goldenWith(r -> {
            ((ArrayNode) r.get("model").get("merges")).set(5, "nospace");
            return r;
        }), "model.merges[5]");
    }

    @Test
    void unsupportedPipelineStages() throws IOException {
        assertRejected(goldenWith(r -> {
            ((ObjectNode) r.get("normalizer")).put("type", "BertNormalizer");
            return r;
        }), "normalizer.type");
        assertRejected(goldenWith(r -> {
            ((ObjectNode) r.get("pre_tokenizer")).put("type", "Metaspace");
            return r;
        }), "pre_tokenizer.type");
        assertRejected(goldenWith(r -> {
            ((ObjectNode) r.get("decoder")).put("type", "WordPiece");
            return r;
        }), "decoder.type");
        assertRejected(goldenWith(r -> {
            ((ObjectNode) r.get("pre_tokenizer").get("pretokenizers").get(0).get("pattern")).put("Regex", "(unclosed");
            return r;
        }), "pre_tokenizer.pretokenizers[0].pattern.Regex");
    }

    @Test
    void badAddedToken() throws IOException {
        assertRejected(goldenWith(r -> {
            ((ObjectNode) r.get("added_tokens").get(2)).remove("content");
            return r;
        }), "added_tokens[2].content");
    }

    @Test
    void mergesWrittenAsStringsEncodeTheSame() throws IOException {
        Path file = goldenWith(r -> {
            ArrayNode merges = (ArrayNode) r.get("model").get("merges");
            ArrayNode strings = GoldenFiles.JSON.createArrayNode();
            for (JsonNode m : merges) {
                strings.add(m.get(0).stringValue() + " " + m.get(1).stringValue());
            }
            ((ObjectNode) r.get("model")).set("merges", strings);
            return r;
        });
        Tokenizer legacy = Tokenizer.load(file);
        Tokenizer golden = Tokenizer.load(GoldenFiles.tokenizerJson());
        for (JsonNode c : GoldenFiles.expected().get("cases")) {
            String text = c.get("text").stringValue();
            assertArrayEquals(golden.encode(text), legacy.encode(text), text);
        }
        assertEquals(golden.vocabSize(), legacy.vocabSize());
    }
}
