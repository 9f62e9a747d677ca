package io.ringserve.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The individual stages: regex translation, splitting, added-token flags, BPE options. */
class PipelineStagesTest {

    private static final Path FAKE = Path.of("inline.json");

    private static JsonCursor json(String text) {
        return JsonCursor.parse(FAKE, text.getBytes(StandardCharsets.UTF_8));
    }

    private static List<String> split(PreTokenizer pre, String text) {
        List<String> out = new ArrayList<>();
        pre.split(text, out::add);
        return out;
    }

    @Test
    void onigurumaDefaultsCarryOver() {
        Pattern ws = OnigurumaPatterns.compile("\\s+");
        assertTrue(ws.matcher("\u00A0\u3000\u2009").matches(), "\\s is Unicode White_Space");
        assertTrue(OnigurumaPatterns.compile("'(?i:[sdmt]|ll|ve|re)").matcher("'LL").matches());
        assertTrue(OnigurumaPatterns.compile("(?i:s)").matcher("\u017F").matches(), "long s folds to s");
        assertTrue(OnigurumaPatterns.compile("\\h+").matcher("09aF").matches());
        assertFalse(OnigurumaPatterns.compile("[\\h]").matcher("g").matches());
        assertTrue(OnigurumaPatterns.compile("\\p{^L}").matcher("1").matches());
        assertTrue(OnigurumaPatterns.compile("[[:alpha:]]+").matcher("añ").matches());
        assertTrue(OnigurumaPatterns.compile("\\p{Han}+").matcher("中文").matches());
        assertTrue(OnigurumaPatterns.compile("(?m:a.b)").matcher("a\nb").matches(), "Ruby (?m) is dot-all");
        assertTrue(OnigurumaPatterns.compile("a$").matcher("a\nb").find(), "$ is a line anchor");
        assertEquals("(?s:x)", OnigurumaPatterns.translate("(?m:x)"));
    }

    @Test
    void possessiveQuantifiersStayPossessive() {
        // [^\s\p{L}\p{N}]++ must not give back the trailing punctuation to a later alternative
        Pattern p = OnigurumaPatterns.compile(" ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s+");
        List<String> pieces = split(new PreTokenizer.SplitPreTokenizer(p, PreTokenizer.SplitBehavior.ISOLATED, false),
                " !!!\n\nx");
        assertEquals(List.of(" !!!\n\n", "x"), pieces);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "REMOVED|the,final,countdown",
            "ISOLATED|the,-,final,-,-,countdown",
            "MERGED_WITH_PREVIOUS|the-,final-,-,countdown",
            "MERGED_WITH_NEXT|the,-final,-,-countdown",
            "CONTIGUOUS|the,-,final,--,countdown"})
    void splitBehaviors(PreTokenizer.SplitBehavior behavior, String expected) {
        PreTokenizer pre = new PreTokenizer.SplitPreTokenizer(Pattern.compile("-"), behavior, false);
        assertEquals(Arrays.asList(expected.split(",")), split(pre, "the-final--countdown"));
    }

    @Test
    void invertedSplitKeepsTheMatches() {
        PreTokenizer pre = new PreTokenizer.SplitPreTokenizer(Pattern.compile("\\w+"), PreTokenizer.SplitBehavior.REMOVED, true);
        assertEquals(List.of("ab", "cd"), split(pre, "ab, cd!"));
    }

    @Test
    void byteLevelWithRegexAndPrefixSpace() {
        PreTokenizer pre = new PreTokenizer.ByteLevelPreTokenizer(true, true);
        assertEquals(List.of("Ġhello", "Ġworld", "'s"), split(pre, "hello world's"));
    }

    @Test
    void addedTokenFlags() {
        TextNormalizer none = TextNormalizer.IDENTITY;
        AddedToken lstrip = new AddedToken(10, "<mask>", false, true, false, false, true);
        AddedToken rstrip = new AddedToken(11, "<r>", false, false, true, false, true);
        AddedToken word = new AddedToken(12, "ab", true, false, false, false, false);
        AddedToken longer = new AddedToken(13, "<mask>x", false, false, false, false, true);
        AddedVocabulary vocab = AddedVocabulary.of(List.of(lstrip, rstrip, word, longer), false, none);

        assertEquals(List.of(seg("Hello", -1), seg("  <mask>", 10), seg(" there", -1)), vocab.split("Hello  <mask> there"));
        assertEquals(List.of(seg("a", -1), seg("<r>  ", 11), seg("b", -1)), vocab.split("a<r>  b"));
        assertEquals(List.of(seg("ab", 12), seg(" cab ", -1), seg("ab", 12)), vocab.split("ab cab ab"));
        assertEquals(List.of(seg("y", -1), seg("<mask>x", 13)), vocab.split("y<mask>x"), "longest match wins");
        assertEquals(List.of(seg("", -1)), vocab.split(""));
    }

    private static AddedVocabulary.Segment seg(String text, int id) {
        return new AddedVocabulary.Segment(text, id);
    }

    @Test
    void bpeWithSubwordPrefixAndSuffix() {
        BpeModel model = BpeModel.parse(json("""
                {"model": {"type": "BPE", "continuing_subword_prefix": "##", "end_of_word_suffix": "</w>",
                 "vocab": {"a": 0, "##b": 1, "##c</w>": 2, "##bc</w>": 3, "abc</w>": 4},
                 "merges": ["##b ##c</w>", "a ##bc</w>"]}}
                """).required("model"));
        IntArrayBuilder out = new IntArrayBuilder(4);
        model.tokenize("abc", out);
        assertEquals(List.of(4), Arrays.stream(out.toArray()).boxed().toList());
    }

    @Test
    void bpeUnknownCharactersAndIgnoreMerges() {
        BpeModel fused = BpeModel.parse(json("""
                {"model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true,
                 "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3}, "merges": [["a", "b"]]}}
                """).required("model"));
        IntArrayBuilder out = new IntArrayBuilder(4);
        fused.tokenize("xyab", out);
        assertEquals(List.of(0, 3), Arrays.stream(out.toArray()).boxed().toList());

        BpeModel dropping = BpeModel.parse(json("""
                {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "aab": 3}, "merges": ["a b"],
                 "ignore_merges": true}}
                """).required("model"));
        out = new IntArrayBuilder(4);
        dropping.tokenize("axb", out);  // unknown x is dropped without an unk token, so a and b merge
        dropping.tokenize("aab", out);  // whole word in the vocabulary: merges are not consulted
        assertEquals(List.of(2, 3), Arrays.stream(out.toArray()).boxed().toList());
    }

    @Test
    void bpeMergesLowestRankFirstAndLeftmostOnTies() {
        BpeModel model = BpeModel.parse(json("""
                {"model": {"type": "BPE", "vocab": {"a": 0, "aa": 1, "aaa": 2, "b": 3, "ab": 4},
                 "merges": [["a", "a"], ["a", "b"], ["aa", "a"]]}}
                """).required("model"));
        IntArrayBuilder out = new IntArrayBuilder(4);
        model.tokenize("aaab", out); // a a a b -> aa a b (leftmost aa) -> aa ab
        assertEquals(List.of(1, 4), Arrays.stream(out.toArray()).boxed().toList());
    }
}
