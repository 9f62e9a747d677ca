package io.ringserve.model.tokenizer;

import java.util.List;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/** The {@code pre_tokenizer} stage: cuts a normalized segment into the words the model encodes one by one. */
interface PreTokenizer {

    /** Leaves the segment whole (no {@code pre_tokenizer} in the file). */
    PreTokenizer NONE = (text, out) -> out.accept(text);

    /** Sends the non-empty pieces of {@code text} to {@code out}, in order. */
    void split(String text, Consumer<String> out);

    /** Builds the pre-tokenizer described by {@code json}, or {@link #NONE} for null. */
    static PreTokenizer parse(JsonCursor json) {
        if (json == null) {
            return NONE;
        }
        JsonCursor type = json.required("type");
        return switch (type.string()) {
            case "Sequence" -> new SequencePreTokenizer(json.required("pretokenizers").elements().stream()
                    .map(PreTokenizer::parse).toList());
            case "Split" -> SplitPreTokenizer.parse(json);
            case "ByteLevel" -> new ByteLevelPreTokenizer(json.bool("add_prefix_space", true),
                    json.bool("use_regex", true));
            default -> throw type.error("unsupported pre_tokenizer type \"" + type.string()
                    + "\" (supported: Sequence, Split, ByteLevel)");
        };
    }

    /** Applies each step to every piece produced by the previous step. */
    record SequencePreTokenizer(List<PreTokenizer> steps) implements PreTokenizer {
        @Override
        public void split(String text, Consumer<String> out) {
            run(0, text, out);
        }

        private void run(int step, String text, Consumer<String> out) {
            if (step == steps.size()) {
                out.accept(text);
            } else {
                steps.get(step).split(text, piece -> run(step + 1, piece, out));
            }
        }
    }

    /**
     * Maps each piece to the byte-level alphabet, optionally after a prefix space and a GPT-2 style
     * regex split.
     */
    record ByteLevelPreTokenizer(boolean addPrefixSpace, boolean useRegex) implements PreTokenizer {

        private static final Pattern GPT2 = OnigurumaPatterns.compile(
                "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");

        @Override
        public void split(String text, Consumer<String> out) {
            if (addPrefixSpace && !text.startsWith(" ")) {
                text = " " + text;
            }
            if (useRegex) {
                SplitPreTokenizer.forEachPiece(GPT2, text, SplitBehavior.ISOLATED, false,
                        piece -> out.accept(ByteLevel.encode(piece)));
            } else if (!text.isEmpty()) {
                out.accept(ByteLevel.encode(text));
            }
        }
    }

    /** What a {@code Split} pre-tokenizer does with the matched delimiters. */
    enum SplitBehavior {
        REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS;

        static SplitBehavior parse(JsonCursor json) {
            return switch (json.string()) {
                case "Removed" -> REMOVED;
                case "Isolated" -> ISOLATED;
                case "MergedWithPrevious" -> MERGED_WITH_PREVIOUS;
                case "MergedWithNext" -> MERGED_WITH_NEXT;
                case "Contiguous" -> CONTIGUOUS;
                default -> throw json.error("unsupported split behavior \"" + json.string() + "\"");
            };
        }
    }

    /** Splits on a regex or a literal string. */
    record SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, boolean invert) implements PreTokenizer {

        static SplitPreTokenizer parse(JsonCursor json) {
            JsonCursor pattern = json.required("pattern");
            Pattern compiled;
            JsonCursor regex = pattern.optional("Regex");
            if (regex != null) {
                try {
                    compiled = OnigurumaPatterns.compile(regex.string());
                } catch (PatternSyntaxException e) {
                    throw regex.error("cannot compile regex: " + e.getMessage());
                }
            } else {
                compiled = Pattern.compile(Pattern.quote(pattern.required("String").string()));
            }
            return new SplitPreTokenizer(compiled, SplitBehavior.parse(json.required("behavior")),
                    json.bool("invert", false));
        }

        @Override
        public void split(String text, Consumer<String> out) {
            forEachPiece(pattern, text, behavior, invert, out);
        }

        static void forEachPiece(Pattern pattern, String text, SplitBehavior behavior, boolean invert,
                                 Consumer<String> out) {
            Matcher m = pattern.matcher(text);
            if (behavior == SplitBehavior.ISOLATED) {
                // every match and every gap is a piece of its own; no bookkeeping needed
                int prev = 0;
                while (m.find()) {
                    if (m.start() > prev) {
                        out.accept(text.substring(prev, m.start()));
                    }
                    if (m.end() > m.start()) {
                        out.accept(text.substring(m.start(), m.end()));
                    }
                    prev = m.end();
                }
                if (prev < text.length()) {
                    out.accept(text.substring(prev));
                }
                return;
            }
            // general case: list (start, end, isDelimiter) spans covering the text, then merge them
            IntArrayBuilder spans = new IntArrayBuilder(16);
            int prev = 0;
            while (m.find()) {
                if (m.start() > prev) {
                    spans.add(prev).add(m.start()).add(invert ? 1 : 0);
                }
                spans.add(m.start()).add(m.end()).add(invert ? 0 : 1);
                prev = m.end();
            }
            if (prev < text.length()) {
                spans.add(prev).add(text.length()).add(invert ? 1 : 0);
            }
            emitMerged(text, spans.toArray(), behavior, out);
        }

        private static void emitMerged(String text, int[] s, SplitBehavior behavior, Consumer<String> out) {
            int count = s.length / 3;
            IntArrayBuilder pieces = new IntArrayBuilder(count * 2);
            boolean previousMatch = false;
            switch (behavior) {
                case REMOVED -> {
                    for (int k = 0; k < count; k++) {
                        if (s[3 * k + 2] == 0) {
                            pieces.add(s[3 * k]).add(s[3 * k + 1]);
                        }
                    }
                }
                case MERGED_WITH_PREVIOUS, CONTIGUOUS -> {
                    for (int k = 0; k < count; k++) {
                        boolean match = s[3 * k + 2] == 1;
                        boolean extend = behavior == SplitBehavior.CONTIGUOUS
                                ? match == previousMatch : match && !previousMatch;
                        if (extend && pieces.size() > 0) {
                            pieces.set(pieces.size() - 1, s[3 * k + 1]);
                        } else {
                            pieces.add(s[3 * k]).add(s[3 * k + 1]);
                        }
                        previousMatch = match;
                    }
                }
                case MERGED_WITH_NEXT -> {
                    IntArrayBuilder reversed = new IntArrayBuilder(count * 2);
                    for (int k = count - 1; k >= 0; k--) {
                        boolean match = s[3 * k + 2] == 1;
                        if (match && !previousMatch && reversed.size() > 0) {
                            reversed.set(reversed.size() - 2, s[3 * k]);
                        } else {
                            reversed.add(s[3 * k]).add(s[3 * k + 1]);
                        }
                        previousMatch = match;
                    }
                    int[] r = reversed.toArray();
                    for (int k = r.length - 2; k >= 0; k -= 2) {
                        pieces.add(r[k]).add(r[k + 1]);
                    }
                }
                case ISOLATED -> throw new AssertionError("handled by the caller");
            }
            int[] p = pieces.toArray();
            for (int k = 0; k < p.length; k += 2) {
                if (p[k + 1] > p[k]) {
                    out.accept(text.substring(p[k], p[k + 1]));
                }
            }
        }
    }
}
