package io.ringserve.model.template;

import io.ringserve.model.template.Token.Kind;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits template source into tokens the way jinja2's lexer does with {@code trim_blocks=True}
 * and {@code lstrip_blocks=True}. All whitespace control happens here, so the parser and the
 * interpreter never see the stripped text.
 */
final class Lexer {
    private static final Pattern WHITESPACE = Pattern.compile("\\s+", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern FLOAT = Pattern.compile(
            "(?<!\\.)(\\d+_)*\\d+((\\.(\\d+_)*\\d+)?[eE][+\\-]?(\\d+_)*\\d+|\\.(\\d+_)*\\d+)");
    private static final Pattern INTEGER = Pattern.compile(
            "0[bB](_?[01])+|0[oO](_?[0-7])+|0[xX](_?[0-9a-fA-F])+|[1-9](_?\\d)*|0(_?0)*");
    private static final Pattern NAME = Pattern.compile(
            "[\\p{L}\\p{Nl}_][\\p{L}\\p{Nl}\\p{Mn}\\p{Mc}\\p{Nd}\\p{Pc}]*");
    private static final Pattern STRING = Pattern.compile(
            "'([^'\\\\]*(?:\\\\.[^'\\\\]*)*)'|\"([^\"\\\\]*(?:\\\\.[^\"\\\\]*)*)\"", Pattern.DOTALL);
    private static final Pattern RAW_BEGIN = Pattern.compile(
            "\\{%([-+]?)\\s*raw\\s*(?:-%}\\s*|%})", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern RAW_END = Pattern.compile(
            "\\{%([-+]?)\\s*endraw\\s*(?:\\+%}|-%}\\s*|%}\\n?)", Pattern.UNICODE_CHARACTER_CLASS);
    // longest first, so "//" wins over "/"
    private static final String[] OPERATORS = {
        "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}",
        ">", "<", "=", ".", ":", "|", ",", ";"
    };

    private final String src;
    private final int[] lineStarts;
    private final List<Token> tokens = new ArrayList<>();
    private int pos;
    // jinja2 only lstrips a tag at the very start of the template or right after a newline it consumed
    private boolean lineStarting = true;

    private Lexer(String source) {
        this.src = normalizeNewlines(source);
        List<Integer> starts = new ArrayList<>();
        starts.add(0);
        for (int i = 0; i < src.length(); i++) {
            if (src.charAt(i) == '\n') {
                starts.add(i + 1);
            }
        }
        this.lineStarts = starts.stream().mapToInt(Integer::intValue).toArray();
    }

    static List<Token> tokenize(String source) {
        Lexer lexer = new Lexer(source);
        lexer.run();
        return lexer.tokens;
    }

    /** jinja2 turns every line break into "\n" and drops a single trailing newline. */
    private static String normalizeNewlines(String source) {
        String s = source.replace("\r\n", "\n").replace('\r', '\n');
        return s.endsWith("\n") ? s.substring(0, s.length() - 1) : s;
    }

    private void run() {
        int n = src.length();
        while (pos < n) {
            int start = nextTagStart(pos);
            if (start < 0) {
                add(Kind.DATA, src.substring(pos), pos);
                break;
            }
            char type = src.charAt(start + 1);
            Matcher raw = null;
            String sign;
            if (type == '%' && (raw = lookingAt(RAW_BEGIN, start)) != null) {
                sign = raw.group(1);
            } else {
                char c = start + 2 < n ? src.charAt(start + 2) : 0;
                sign = c == '-' || c == '+' ? String.valueOf(c) : "";
            }
            addData(src.substring(pos, start), pos, sign, type != '{');
            if (raw != null) {
                pos = raw.end();
                lineStarting = src.charAt(pos - 1) == '\n';
                lexRaw(start);
                continue;
            }
            pos = start + 2 + sign.length();
            switch (type) {
                case '#' -> lexComment(start);
                case '%' -> {
                    add(Kind.BLOCK_BEGIN, "{%", start);
                    lexTag(true);
                }
                default -> {
                    add(Kind.VAR_BEGIN, "{{", start);
                    lexTag(false);
                }
            }
        }
        add(Kind.EOF, "", n);
    }

    private int nextTagStart(int from) {
        for (int i = src.indexOf('{', from); i >= 0 && i + 1 < src.length(); i = src.indexOf('{', i + 1)) {
            char c = src.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') {
                return i;
            }
        }
        return -1;
    }

    /** Emits template text before a tag, applying "-" stripping or lstrip_blocks. */
    private void addData(String text, int at, String sign, boolean lstripAllowed) {
        if (sign.equals("-")) {
            text = Py.rstrip(text, null);
        } else if (!sign.equals("+") && lstripAllowed) {
            int lineStart = text.lastIndexOf('\n') + 1;
            if ((lineStart > 0 || lineStarting) && lineStart < text.length()
                    && WHITESPACE.matcher(text).region(lineStart, text.length()).matches()) {
                text = text.substring(0, lineStart);
            }
        }
        if (!text.isEmpty()) {
            add(Kind.DATA, text, at);
        }
    }

    private void lexRaw(int rawStart) {
        Matcher end = RAW_END.matcher(src);
        if (!end.find(pos)) {
            throw error("Missing end of raw directive", rawStart);
        }
        addData(src.substring(pos, end.start()), pos, end.group(1), true);
        pos = end.end();
        lineStarting = src.charAt(pos - 1) == '\n';
    }

    private void lexComment(int commentStart) {
        for (int i = pos; i + 1 < src.length(); i++) {
            if (src.startsWith("+#}", i)) {
                pos = i + 3;
            } else if (src.startsWith("-#}", i)) {
                pos = skipWhitespace(i + 3);
            } else if (src.startsWith("#}", i)) {
                pos = i + 2 < src.length() && src.charAt(i + 2) == '\n' ? i + 3 : i + 2;
            } else {
                continue;
            }
            lineStarting = src.charAt(pos - 1) == '\n';
            return;
        }
        throw error("Missing end of comment tag", commentStart);
    }

    private void lexTag(boolean block) {
        Deque<Character> open = new ArrayDeque<>();
        int n = src.length();
        while (true) {
            if (pos >= n) {
                throw error("unexpected end of template, expected '" + (block ? "%}" : "}}") + "'", pos);
            }
            if (open.isEmpty() && lexTagEnd(block)) {
                return;
            }
            Matcher m;
            if ((m = lookingAt(WHITESPACE, pos)) != null) {
                pos = m.end();
            } else if ((m = lookingAt(FLOAT, pos)) != null) {
                String t = m.group();
                add(Kind.FLOAT, t, Double.parseDouble(t.replace("_", "")), pos);
                pos = m.end();
            } else if ((m = lookingAt(INTEGER, pos)) != null) {
                String t = m.group();
                add(Kind.INTEGER, t, parseInteger(t), pos);
                pos = m.end();
            } else if ((m = lookingAt(NAME, pos)) != null) {
                add(Kind.NAME, m.group(), pos);
                pos = m.end();
            } else if ((m = lookingAt(STRING, pos)) != null) {
                String t = m.group();
                add(Kind.STRING, t, unescape(t.substring(1, t.length() - 1), pos), pos);
                pos = m.end();
            } else {
                String op = operatorAt(pos);
                if (op == null) {
                    throw error("unexpected char '" + src.charAt(pos) + "'", pos);
                }
                balance(open, op);
                add(Kind.OPERATOR, op, pos);
                pos += op.length();
            }
        }
    }

    private boolean lexTagEnd(boolean block) {
        int start = pos;
        if (block) {
            if (src.startsWith("+%}", pos)) {
                pos += 3;
            } else if (src.startsWith("-%}", pos)) {
                pos = skipWhitespace(pos + 3);
            } else if (src.startsWith("%}", pos)) {
                pos += 2;
                // trim_blocks: the first newline after a block tag goes
                if (pos < src.length() && src.charAt(pos) == '\n') {
                    pos++;
                }
            } else {
                return false;
            }
        } else if (src.startsWith("-}}", pos)) {
            pos = skipWhitespace(pos + 3);
        } else if (src.startsWith("}}", pos)) {
            pos += 2;
        } else {
            return false;
        }
        add(block ? Kind.BLOCK_END : Kind.VAR_END, block ? "%}" : "}}", start);
        lineStarting = src.charAt(pos - 1) == '\n';
        return true;
    }

    private void balance(Deque<Character> open, String op) {
        switch (op) {
            case "{" -> open.push('}');
            case "(" -> open.push(')');
            case "[" -> open.push(']');
            case "}", ")", "]" -> {
                if (open.isEmpty()) {
                    throw error("unexpected '" + op + "'", pos);
                }
                char expected = open.pop();
                if (expected != op.charAt(0)) {
                    throw error("unexpected '" + op + "', expected '" + expected + "'", pos);
                }
            }
            default -> { }
        }
    }

    private String operatorAt(int at) {
        for (String op : OPERATORS) {
            if (src.startsWith(op, at)) {
                return op;
            }
        }
        return null;
    }

    private int skipWhitespace(int from) {
        Matcher m = lookingAt(WHITESPACE, from);
        return m == null ? from : m.end();
    }

    private Matcher lookingAt(Pattern p, int at) {
        Matcher m = p.matcher(src).region(at, src.length()).useTransparentBounds(true).useAnchoringBounds(false);
        return m.lookingAt() ? m : null;
    }

    private Object parseInteger(String text) {
        String t = text.replace("_", "").toLowerCase(java.util.Locale.ROOT);
        int radix = 10;
        if (t.startsWith("0b") || t.startsWith("0o") || t.startsWith("0x")) {
            radix = switch (t.charAt(1)) {
                case 'b' -> 2;
                case 'o' -> 8;
                default -> 16;
            };
            t = t.substring(2);
        }
        try {
            return Long.parseLong(t, radix);
        } catch (NumberFormatException e) {
            throw error("integer literal too large: " + text, pos);
        }
    }

    /** Decodes Python string escapes; unknown escapes stay as written, as in Python. */
    private String unescape(String body, int at) {
        if (body.indexOf('\\') < 0) {
            return body;
        }
        StringBuilder out = new StringBuilder(body.length());
        for (int i = 0; i < body.length(); i++) {
            char c = body.charAt(i);
            if (c != '\\' || i + 1 >= body.length()) {
                out.append(c);
                continue;
            }
            char e = body.charAt(++i);
            switch (e) {
                case '\n' -> { }
                case '\\' -> out.append('\\');
                case '\'' -> out.append('\'');
                case '"' -> out.append('"');
                case 'a' -> out.append('\u0007');
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'n' -> out.append('\n');
                case 'r' -> out.append('\r');
                case 't' -> out.append('\t');
                case 'v' -> out.append('\u000b');
                case 'x', 'u', 'U' -> {
                    int len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    if (i + len >= body.length()) {
                        throw error("truncated \\" + e + " escape", at);
                    }
                    String hex = body.substring(i + 1, i + 1 + len);
                    int cp;
                    try {
                        cp = Integer.parseInt(hex, 16);
                    } catch (NumberFormatException ex) {
                        throw error("truncated \\" + e + " escape", at);
                    }
                    if (!Character.isValidCodePoint(cp)) {
                        throw error("illegal Unicode character", at);
                    }
                    out.appendCodePoint(cp);
                    i += len;
                }
                default -> {
                    if (e >= '0' && e <= '7') {
                        int end = i;
                        while (end < body.length() && end < i + 3 && body.charAt(end) >= '0' && body.charAt(end) <= '7') {
                            end++;
                        }
                        out.appendCodePoint(Integer.parseInt(body.substring(i, end), 8));
                        i = end - 1;
                    } else {
                        out.append('\\').append(e);
                    }
                }
            }
        }
        return out.toString();
    }

    private void add(Kind kind, String text, int at) {
        add(kind, text, text, at);
    }

    private void add(Kind kind, String text, Object value, int at) {
        int line = lineOf(at);
        tokens.add(new Token(kind, text, value, line, at - lineStarts[line - 1] + 1));
    }

    private int lineOf(int at) {
        int idx = java.util.Arrays.binarySearch(lineStarts, at);
        return idx >= 0 ? idx + 1 : -idx - 1;
    }

    private TemplateException error(String message, int at) {
        int line = lineOf(Math.min(at, src.length()));
        return TemplateException.syntax(message, line, at - lineStarts[line - 1] + 1);
    }
}
