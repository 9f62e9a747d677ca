package io.ringserve.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Expected strings follow Rust's {@code String::from_utf8_lossy} (one U+FFFD per maximal subpart). */
class Utf8LossyTest {

    @ParameterizedTest
    @CsvSource({
            "41,                A",
            "c3a9,              é",
            "f09f9982,          🙂",
            "f09f98,            \uFFFD",
            "f09f9841,          \uFFFDA",
            "eda080,            \uFFFD\uFFFD\uFFFD",
            "e080,              \uFFFD\uFFFD",
            "c080,              \uFFFD\uFFFD",
            "f4908080,          \uFFFD\uFFFD\uFFFD\uFFFD",
            "ff41,              \uFFFDA",
            "80bf,              \uFFFD\uFFFD",
            "e282,              \uFFFD",
            "e282ac,            €",
            "e2c3a9,            \uFFFDé",
            "f1808080f4,        \uD8C0\uDC00\uFFFD"})
    void replacesLikeRust(String hex, String expected) {
        byte[] bytes = HexFormat.of().parseHex(hex);
        assertEquals(expected, Utf8Lossy.decode(bytes, 0, bytes.length));
    }

    @ParameterizedTest
    @CsvSource({"f09f98, 0", "41f09f, 1", "41e282, 1", "4142, 2", "41ff, 2", "41e241, 3"})
    void stopsBeforeAnIncompleteTailUnlessAtEndOfInput(String hex, int consumed) {
        byte[] bytes = HexFormat.of().parseHex(hex);
        StringBuilder out = new StringBuilder();
        assertEquals(consumed, Utf8Lossy.decode(bytes, 0, bytes.length, false, out));
    }

    @ParameterizedTest
    @CsvSource({"Hello", "中文", "🙂🚀"})
    void decodesValidTextUnchanged(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        assertEquals(text, Utf8Lossy.decode(bytes, 0, bytes.length));
    }
}
