package io.ringserve.model.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Finds added tokens in text the way the reference AddedVocabulary does: leftmost match first and,
 * among matches starting at the same place, the longest; matches never overlap. The
 * {@code single_word}, {@code lstrip} and {@code rstrip} flags are then applied to each match.
 */
final class AddedVocabulary {

    /** A piece of the input: either plain text ({@code tokenId < 0}) or one recognised added token. */
    record Segment(String text, int tokenId) {
        boolean isToken() {
            return tokenId >= 0;
        }
    }

    /** Candidates by first character, longest first so the first hit is the longest match. */
    private final Map<Character, AddedToken[]> byFirstChar;
    /** Text of each candidate as matched (normalized for normalized tokens). */
    private final Map<AddedToken, String> matchText;

    private AddedVocabulary(List<AddedToken> tokens, TextNormalizer normalizer) {
        Map<Character, List<AddedToken>> groups = new HashMap<>();
        matchText = new HashMap<>();
        for (AddedToken t : tokens) {
            String text = t.normalized() ? normalizer.normalize(t.content()) : t.content();
            if (text.isEmpty()) {
                continue;
            }
            matchText.put(t, text);
            groups.computeIfAbsent(text.charAt(0), k -> new ArrayList<>()).add(t);
        }
        byFirstChar = new HashMap<>();
        groups.forEach((c, list) -> {
            list.sort(Comparator.comparingInt((AddedToken t) -> matchText.get(t).length()).reversed());
            byFirstChar.put(c, list.toArray(AddedToken[]::new));
        });
    }

    /** Matcher over the tokens with {@code normalized == wantNormalized}. */
    static AddedVocabulary of(List<AddedToken> all, boolean wantNormalized, TextNormalizer normalizer) {
        return new AddedVocabulary(all.stream().filter(t -> t.normalized() == wantNormalized).toList(), normalizer);
    }

    /** Splits {@code text} into plain-text segments and added-token segments, in order. */
    List<Segment> split(String text) {
        List<Segment> out = new ArrayList<>();
        if (byFirstChar.isEmpty()) {
            out.add(new Segment(text, -1));
            return out;
        }
        int n = text.length();
        int done = 0; // end of the last emitted segment
        int pos = 0;  // where the search for the next match resumes
        while (pos < n) {
            AddedToken hit = null;
            int start = pos;
            for (; start < n && hit == null; start++) {
                AddedToken[] candidates = byFirstChar.get(text.charAt(start));
                if (candidates != null) {
                    for (AddedToken t : candidates) {
                        if (text.startsWith(matchText.get(t), start)) {
                            hit = t;
                            break;
                        }
                    }
                }
            }
            if (hit == null) {
                break;
            }
            start--;
            int stop = start + matchText.get(hit).length();
            pos = stop;
            if (hit.singleWord() && (endsWithWordChar(text, start) || startsWithWordChar(text, stop))) {
                continue; // glued to a word: not a match, the text stays plain
            }
            if (hit.lstrip()) {
                // spaces already consumed by the previous match stay with it
                start = Math.max(leftmostSpaceBefore(text, start), done);
            }
            if (hit.rstrip()) {
                stop = rightmostSpaceAfter(text, stop);
                pos = stop;
            }
            if (done < start) {
                out.add(new Segment(text.substring(done, start), -1));
            }
            out.add(new Segment(text.substring(start, stop), hit.id()));
            done = stop;
        }
        if (done < n || out.isEmpty()) {
            out.add(new Segment(text.substring(done), -1));
        }
        return out;
    }

    private static boolean endsWithWordChar(String text, int end) {
        return end > 0 && isWordChar(text.codePointBefore(end));
    }

    private static boolean startsWithWordChar(String text, int start) {
        return start < text.length() && isWordChar(text.codePointAt(start));
    }

    /** Alphanumeric as Rust's {@code char::is_alphanumeric}, or underscore. */
    private static boolean isWordChar(int cp) {
        if (cp == '_' || Character.isAlphabetic(cp)) {
            return true;
        }
        int type = Character.getType(cp);
        return type == Character.DECIMAL_DIGIT_NUMBER || type == Character.LETTER_NUMBER
                || type == Character.OTHER_NUMBER;
    }

    private static int leftmostSpaceBefore(String text, int end) {
        int i = end;
        while (i > 0) {
            int cp = text.codePointBefore(i);
            if (!isWhiteSpace(cp)) {
                break;
            }
            i -= Character.charCount(cp);
        }
        return i;
    }

    private static int rightmostSpaceAfter(String text, int start) {
        int i = start;
        while (i < text.length()) {
            int cp = text.codePointAt(i);
            if (!isWhiteSpace(cp)) {
                break;
            }
            i += Character.charCount(cp);
        }
        return i;
    }

    /**
     * The Unicode White_Space property, as Rust's {@code char::is_whitespace}; Java's
     * {@link Character#isWhitespace} differs (it excludes no-break spaces and includes U+001C..U+001F).
     */
    static boolean isWhiteSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F
                || cp == 0x205F || cp == 0x3000;
    }
}
