package io.ringserve.model.tokenizer;

import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Compiles the Oniguruma (Ruby syntax) regular expressions found in tokenizer files with
 * {@link java.util.regex}. The two dialects agree on the constructs tokenizers use (classes,
 * {@code \p{..}} categories, lookaheads, possessive quantifiers, atomic groups), so translation is
 * a small rewrite of the few spellings that differ plus flags that give Oniguruma's defaults:
 * <ul>
 *   <li>{@code \s}, {@code \w}, {@code \d} are Unicode-aware in Oniguruma, hence
 *       {@link Pattern#UNICODE_CHARACTER_CLASS} (so {@code \s} also covers U+00A0, U+3000, ...);</li>
 *   <li>{@code (?i:...)} folds case with Unicode rules, hence {@link Pattern#UNICODE_CASE};</li>
 *   <li>{@code ^}/{@code $} are line anchors and only {@code \n} ends a line, hence
 *       {@link Pattern#MULTILINE} with {@link Pattern#UNIX_LINES};</li>
 *   <li>Ruby's {@code (?m)} is Java's {@code (?s)}; {@code \h} is a hex digit; {@code \v} is U+000B;
 *       {@code \p{^X}} negates; POSIX brackets {@code [:alpha:]} become {@code \p{Alpha}}.</li>
 * </ul>
 * Possessive quantifiers ({@code ?+}, {@code ++}) are passed through unchanged rather than
 * weakened to greedy ones: Java gives them the same never-give-back meaning, so the match
 * boundaries stay those of the reference, and they stop the engine from backtracking through long
 * runs of punctuation, which keeps matching linear in the input length.
 */
final class OnigurumaPatterns {

    static final int FLAGS = Pattern.UNICODE_CHARACTER_CLASS | Pattern.UNICODE_CASE | Pattern.MULTILINE
            | Pattern.UNIX_LINES;

    private static final Map<String, String> POSIX = Map.ofEntries(
            Map.entry("alpha", "\\p{Alpha}"), Map.entry("digit", "\\p{Digit}"), Map.entry("alnum", "\\p{Alnum}"),
            Map.entry("upper", "\\p{Upper}"), Map.entry("lower", "\\p{Lower}"), Map.entry("space", "\\p{Space}"),
            Map.entry("punct", "\\p{Punct}"), Map.entry("xdigit", "\\p{XDigit}"), Map.entry("cntrl", "\\p{Cntrl}"),
            Map.entry("print", "\\p{Print}"), Map.entry("graph", "\\p{Graph}"), Map.entry("blank", "\\p{Blank}"),
            Map.entry("word", "\\w"));

    private OnigurumaPatterns() {
    }

    /**
     * Compiles an Oniguruma pattern.
     *
     * @throws PatternSyntaxException if it uses syntax that has no Java equivalent
     */
    static Pattern compile(String onig) {
        return Pattern.compile(translate(onig), FLAGS);
    }

    /** The Java spelling of an Oniguruma pattern. */
    static String translate(String p) {
        StringBuilder out = new StringBuilder(p.length() + 16);
        int depth = 0; // nesting of character classes
        int i = 0;
        int n = p.length();
        while (i < n) {
            char c = p.charAt(i);
            if (c == '\\' && i + 1 < n) {
                char d = p.charAt(i + 1);
                switch (d) {
                    case 'h' -> out.append(depth > 0 ? "0-9a-fA-F" : "[0-9a-fA-F]");
                    case 'H' -> out.append("[^0-9a-fA-F]");
                    case 'v' -> out.append("\\x0B");
                    case 'p', 'P' -> {
                        int close = p.indexOf('}', i);
                        if (i + 2 >= n || p.charAt(i + 2) != '{' || close < 0) {
                            throw new PatternSyntaxException("malformed property escape", p, i);
                        }
                        String name = p.substring(i + 3, close);
                        boolean negate = d == 'P';
                        if (name.startsWith("^")) {
                            negate = !negate;
                            name = name.substring(1);
                        }
                        out.append(negate ? "\\P{" : "\\p{").append(javaPropertyName(name, p, i)).append('}');
                        i = close + 1;
                        continue;
                    }
                    default -> out.append(c).append(d);
                }
                i += 2;
            } else if (c == '[' && depth > 0 && p.startsWith("[:", i) && p.indexOf(":]", i + 2) > 0) {
                int close = p.indexOf(":]", i + 2);
                String name = p.substring(i + 2, close);
                boolean negate = name.startsWith("^");
                String java = POSIX.get((negate ? name.substring(1) : name).toLowerCase(Locale.ROOT));
                if (java == null) {
                    throw new PatternSyntaxException("unknown POSIX bracket [:" + name + ":]", p, i);
                }
                out.append(negate ? (java.equals("\\w") ? "\\W" : java.replace("\\p", "\\P")) : java);
                i = close + 2;
            } else if (c == '[') {
                depth++;
                out.append(c);
                i++;
            } else if (c == ']' && depth > 0) {
                depth--;
                out.append(c);
                i++;
            } else if (c == '(' && depth == 0 && p.startsWith("(?", i) && i + 2 < n && isOptionChar(p.charAt(i + 2))) {
                // inline options such as (?i:...) or (?m-x); Ruby's m (dot matches newline) is Java's s
                out.append("(?");
                i += 2;
                while (i < n && isOptionChar(p.charAt(i))) {
                    char o = p.charAt(i++);
                    out.append(o == 'm' ? 's' : o);
                }
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    private static boolean isOptionChar(char c) {
        return c == 'i' || c == 'm' || c == 'x' || c == '-';
    }

    /** Java accepts general categories as is and scripts/binary properties with an "Is" prefix. */
    private static String javaPropertyName(String name, String pattern, int index) {
        for (String candidate : new String[]{name, "Is" + name, "Is" + name.replace(" ", "_")}) {
            try {
                Pattern.compile("\\p{" + candidate + "}", FLAGS);
                return candidate;
            } catch (PatternSyntaxException e) {
                // try the next spelling
            }
        }
        throw new PatternSyntaxException("unknown Unicode property \\p{" + name + "}", pattern, index);
    }
}
