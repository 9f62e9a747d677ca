package io.ringserve.model.template;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The Python {@code str}, {@code dict} and {@code list}/{@code tuple} methods templates call. */
final class Methods {
    private Methods() {
    }

    /** A bound string method, or null when {@code str} has no such (supported) method. */
    static PyCallable string(String s, String name) {
        return switch (name) {
            case "startswith", "endswith" -> (args, kw) -> {
                Args a = new Args(name, args, kw);
                String sub = slice(s, a, 1);
                Object prefix = a.required(0, "prefix");
                List<Object> options = prefix instanceof PyTuple t ? t.items() : List.of(prefix);
                for (Object option : options) {
                    if (!(option instanceof String p)) {
                        throw new TemplateException(name + " first arg must be str or a tuple of str, not "
                                + Values.typeName(option));
                    }
                    if (name.equals("startswith") ? sub.startsWith(p) : sub.endsWith(p)) {
                        return true;
                    }
                }
                return false;
            };
            case "split", "rsplit" -> (args, kw) -> {
                Args a = new Args(name, args, kw);
                String sep = a.string(0, "sep", null);
                long max = a.integer(1, "maxsplit", -1);
                return name.equals("split") ? Py.split(s, sep, max) : Py.rsplit(s, sep, max);
            };
            case "strip" -> (args, kw) -> Py.strip(s, new Args(name, args, kw).string(0, "chars", null));
            case "lstrip" -> (args, kw) -> Py.lstrip(s, new Args(name, args, kw).string(0, "chars", null));
            case "rstrip" -> (args, kw) -> Py.rstrip(s, new Args(name, args, kw).string(0, "chars", null));
            case "lower" -> (args, kw) -> Py.lower(s);
            case "upper" -> (args, kw) -> Py.upper(s);
            case "casefold" -> (args, kw) -> Py.lower(s);
            case "swapcase" -> (args, kw) -> {
                StringBuilder out = new StringBuilder();
                s.codePoints().forEach(cp -> out.appendCodePoint(Character.isUpperCase(cp)
                        ? Character.toLowerCase(cp) : Character.toUpperCase(cp)));
                return out.toString();
            };
            case "title" -> (args, kw) -> Py.title(s);
            case "capitalize" -> (args, kw) -> Py.capitalize(s);
            case "replace" -> (args, kw) -> {
                Args a = new Args(name, args, kw);
                return replace(s, a.string(0, "old", null), a.string(1, "new", null), a.integer(2, "count", -1));
            };
            case "find", "rfind", "index", "rindex" -> (args, kw) -> {
                Args a = new Args(name, args, kw);
                String sub = (String) a.required(0, "sub");
                int offset = offset(s, a, 1);
                String region = slice(s, a, 1);
                int idx = name.startsWith("r") ? region.lastIndexOf(sub) : region.indexOf(sub);
                if (idx < 0) {
                    if (name.endsWith("index")) {
                        throw new TemplateException("substring not found");
                    }
                    return -1L;
                }
                return (long) (offset + region.codePointCount(0, idx));
            };
            case "count" -> (args, kw) -> {
                Args a = new Args(name, args, kw);
                String sub = (String) a.required(0, "sub");
                String region = slice(s, a, 1);
                if (sub.isEmpty()) {
                    return (long) Py.length(region) + 1;
                }
                long n = 0;
                for (int i = region.indexOf(sub); i >= 0; i = region.indexOf(sub, i + sub.length())) {
                    n++;
                }
                return n;
            };
            case "join" -> (args, kw) -> {
                Args a = new Args(name, args, kw);
                List<Object> items = Values.iterate(a.required(0, "iterable"));
                StringBuilder out = new StringBuilder();
                for (int i = 0; i < items.size(); i++) {
                    if (!(items.get(i) instanceof String item)) {
                        throw new TemplateException("sequence item " + i + ": expected str instance, "
                                + Values.typeName(items.get(i)) + " found");
                    }
                    if (i > 0) {
                        out.append(s);
                    }
                    out.append(item);
                }
                return out.toString();
            };
            case "format" -> (args, kw) -> Formats.braces(s, args, kw);
            case "splitlines" -> (args, kw) -> new ArrayList<Object>(Py.splitLines(s));
            case "partition", "rpartition" -> (args, kw) -> {
                String sep = new Args(name, args, kw).string(0, "sep", null);
                int idx = name.equals("partition") ? s.indexOf(sep) : s.lastIndexOf(sep);
                if (idx < 0) {
                    return name.equals("partition") ? PyTuple.of(s, "", "") : PyTuple.of("", "", s);
                }
                return PyTuple.of(s.substring(0, idx), sep, s.substring(idx + sep.length()));
            };
            case "removeprefix" -> (args, kw) -> {
                String p = new Args(name, args, kw).string(0, "prefix", "");
                return s.startsWith(p) ? s.substring(p.length()) : s;
            };
            case "removesuffix" -> (args, kw) -> {
                String p = new Args(name, args, kw).string(0, "suffix", "");
                return !p.isEmpty() && s.endsWith(p) ? s.substring(0, s.length() - p.length()) : s;
            };
            case "zfill" -> (args, kw) -> {
                int width = (int) new Args(name, args, kw).integer(0, "width", 0);
                int pad = width - Py.length(s);
                if (pad <= 0) {
                    return s;
                }
                boolean sign = !s.isEmpty() && (s.charAt(0) == '-' || s.charAt(0) == '+');
                return sign ? s.charAt(0) + "0".repeat(pad) + s.substring(1) : "0".repeat(pad) + s;
            };
            case "center", "ljust", "rjust" -> (args, kw) -> {
                Args a = new Args(name, args, kw);
                int width = (int) a.integer(0, "width", 0);
                String fill = a.string(1, "fillchar", " ");
                return pad(s, width, fill, name.equals("ljust") ? '<' : name.equals("rjust") ? '>' : '^');
            };
            case "isdigit", "isdecimal", "isnumeric" -> (args, kw) ->
                    !s.isEmpty() && s.codePoints().allMatch(Character::isDigit);
            case "isalpha" -> (args, kw) -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetter);
            case "isalnum" -> (args, kw) -> !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit);
            case "isspace" -> (args, kw) -> !s.isEmpty() && s.codePoints().allMatch(Py::isSpace);
            case "islower" -> (args, kw) -> cased(s) && s.codePoints().noneMatch(Character::isUpperCase);
            case "isupper" -> (args, kw) -> cased(s) && s.codePoints().noneMatch(Character::isLowerCase);
            default -> null;
        };
    }

    /** A bound dict method, or null. */
    static PyCallable dict(Map<?, ?> m, String name) {
        return switch (name) {
            case "items" -> (args, kw) -> items(m);
            case "keys" -> (args, kw) -> new ArrayList<Object>(m.keySet());
            case "values" -> (args, kw) -> new ArrayList<Object>(m.values());
            case "get" -> (args, kw) -> {
                Args a = new Args(name, args, kw);
                Object v = Values.mapLookup(m, a.required(0, "key"));
                return v == Args.MISSING ? a.get(1, "default", null) : v;
            };
            case "copy" -> (args, kw) -> new LinkedHashMap<Object, Object>(m);
            default -> null;
        };
    }

    /** A bound list/tuple method that does not modify it, or null. */
    static PyCallable sequence(List<?> l, String name) {
        return switch (name) {
            case "index" -> (args, kw) -> {
                Object x = new Args(name, args, kw).required(0, "value");
                for (int i = 0; i < l.size(); i++) {
                    if (Values.eq(l.get(i), x)) {
                        return (long) i;
                    }
                }
                throw new TemplateException(Values.repr(x) + " is not in list");
            };
            case "count" -> (args, kw) -> {
                Object x = new Args(name, args, kw).required(0, "value");
                return l.stream().filter(e -> Values.eq(e, x)).count();
            };
            case "copy" -> (args, kw) -> new ArrayList<Object>(l);
            default -> null;
        };
    }

    static List<Object> items(Map<?, ?> m) {
        List<Object> out = new ArrayList<>(m.size());
        m.forEach((k, v) -> out.add(PyTuple.of(k, v)));
        return out;
    }

    static String replace(String s, String old, String replacement, long count) {
        if (count < 0) {
            if (old.isEmpty()) {
                StringBuilder out = new StringBuilder(replacement);
                s.codePoints().forEach(cp -> out.appendCodePoint(cp).append(replacement));
                return out.toString();
            }
            return s.replace(old, replacement);
        }
        StringBuilder out = new StringBuilder();
        int start = 0;
        for (long n = 0; n < count; n++) {
            int idx = old.isEmpty() ? (start <= s.length() ? start : -1) : s.indexOf(old, start);
            if (idx < 0) {
                break;
            }
            out.append(s, start, idx).append(replacement);
            if (old.isEmpty()) {
                if (idx >= s.length()) {
                    start = s.length() + 1;
                    break;
                }
                int cpLen = Character.charCount(s.codePointAt(idx));
                out.append(s, idx, idx + cpLen);
                start = idx + cpLen;
            } else {
                start = idx + old.length();
            }
        }
        if (start <= s.length()) {
            out.append(s.substring(start));
        }
        return out.toString();
    }

    static String pad(String s, int width, String fill, char align) {
        int len = Py.length(s);
        if (width <= len) {
            return s;
        }
        int total = width - len;
        int left = switch (align) {
            case '<' -> 0;
            case '>' -> total;
            // Python's str.center puts the extra space on the right unless the width is odd
            default -> total / 2 + (total & width & 1);
        };
        return fill.repeat(left) + s + fill.repeat(total - left);
    }

    private static boolean cased(String s) {
        return s.codePoints().anyMatch(cp -> Character.isUpperCase(cp) || Character.isLowerCase(cp));
    }

    /** The part of {@code s} between the optional start/end arguments at {@code first}, {@code first+1}. */
    private static String slice(String s, Args a, int first) {
        Object start = a.get(first, "start", null);
        Object end = a.get(first + 1, "end", null);
        if (start == null && end == null) {
            return s;
        }
        return (String) Values.slice(s, start, end, null);
    }

    private static int offset(String s, Args a, int first) {
        Object start = a.get(first, "start", null);
        if (start == null) {
            return 0;
        }
        long n = Py.length(s);
        long i = Values.toLong(start);
        return (int) (i < 0 ? Math.max(0, i + n) : Math.min(i, n));
    }
}
