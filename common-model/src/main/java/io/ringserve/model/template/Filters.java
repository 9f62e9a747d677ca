package io.ringserve.model.template;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** jinja2's builtin filters, with transformers' {@code tojson} in place of jinja2's HTML-safe one. */
final class Filters {
    private static final Set<String> NAMES = Set.of(
            "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
            "first", "float", "forceescape", "format", "indent", "int", "items", "join", "last", "length", "list",
            "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
            "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "unique", "upper", "wordcount");
    private static final Pattern WORD_BEGINNING = Pattern.compile("([-\\s({\\[<]+)", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern WORD = Pattern.compile("\\w+", Pattern.UNICODE_CHARACTER_CLASS);

    private Filters() {
    }

    static boolean exists(String name) {
        return NAMES.contains(name);
    }

    static Object apply(String name, Object value, List<Object> args, Map<String, Object> kwargs) {
        Args a = new Args(name, args, kwargs);
        return switch (name) {
            case "default", "d" -> {
                boolean bool = a.bool(1, "boolean", false);
                yield value instanceof Undefined || (bool && !Values.truthy(value)) ? a.get(0, "default_value", "") : value;
            }
            case "length", "count" -> Values.length(value);
            case "string" -> Values.str(value);
            case "safe" -> value;
            case "lower" -> Py.lower(Values.str(value));
            case "upper" -> Py.upper(Values.str(value));
            case "capitalize" -> Py.capitalize(Values.str(value));
            case "title" -> title(Values.str(value));
            case "trim" -> Py.strip(Values.str(value), a.string(0, "chars", null));
            case "replace" -> {
                Object count = a.get(2, "count", null);
                yield Methods.replace(Values.str(value), Values.str(a.required(0, "old")),
                        Values.str(a.required(1, "new")), count == null ? -1 : Values.toLong(count));
            }
            case "escape", "e", "forceescape" -> escape(Values.str(value));
            case "center" -> Methods.pad(Values.str(value), (int) a.integer(0, "width", 80), " ", '^');
            case "wordcount" -> {
                Matcher m = WORD.matcher(Values.str(value));
                long n = 0;
                while (m.find()) {
                    n++;
                }
                yield n;
            }
            case "indent" -> indent(Values.str(value), a);
            case "format" -> {
                if (!args.isEmpty() && !kwargs.isEmpty()) {
                    throw new TemplateException("can't handle positional and keyword arguments at the same time");
                }
                yield Formats.percent(Values.str(value), kwargs.isEmpty()
                        ? new PyTuple(new ArrayList<>(args)) : new LinkedHashMap<Object, Object>(kwargs));
            }
            case "int" -> toInt(value, a.get(0, "default", 0L), (int) a.integer(1, "base", 10));
            case "float" -> toFloat(value, a.get(0, "default", 0.0));
            case "abs" -> {
                if (value instanceof Double d) {
                    yield Math.abs(d);
                }
                if (Values.isInt(value)) {
                    yield Math.abs(Values.toLong(value));
                }
                throw new TemplateException("bad operand type for abs(): '" + Values.typeName(value) + "'");
            }
            case "round" -> round(value, (int) a.integer(0, "precision", 0), a.string(1, "method", "common"));
            case "tojson" -> tojson(value, a);
            case "list" -> Values.iterate(value);
            case "first" -> {
                List<Object> items = Values.iterate(value);
                yield items.isEmpty() ? new Undefined("No first item, sequence was empty.") : items.getFirst();
            }
            case "last" -> {
                List<Object> items = Values.iterate(value);
                yield items.isEmpty() ? new Undefined("No last item, sequence was empty.") : items.getLast();
            }
            case "reverse" -> {
                if (value instanceof String s) {
                    yield new StringBuilder(s).reverse().toString();
                }
                yield Values.iterate(value).reversed();
            }
            case "join" -> {
                String sep = Values.str(a.get(0, "d", ""));
                Object attribute = a.get(1, "attribute", null);
                List<String> parts = new ArrayList<>();
                for (Object item : Values.iterate(value)) {
                    parts.add(Values.str(attribute == null ? item : attribute(item, attribute, Args.MISSING)));
                }
                yield String.join(sep, parts);
            }
            case "items" -> {
                if (value instanceof Undefined) {
                    yield new ArrayList<>();
                }
                if (!(value instanceof Map<?, ?> m)) {
                    throw new TemplateException("Can only get item pairs from a mapping.");
                }
                yield Methods.items(m);
            }
            case "dictsort" -> dictsort(value, a);
            case "attr" -> Values.getAttr(value, Values.str(a.required(0, "name")));
            case "map" -> map(value, args, kwargs);
            case "select", "reject" -> select(value, null, args, name.equals("select"));
            case "selectattr", "rejectattr" -> {
                if (args.isEmpty()) {
                    throw new TemplateException(name + "() missing required argument 'attribute'");
                }
                yield select(value, args.getFirst(), args.subList(1, args.size()), name.equals("selectattr"));
            }
            case "sort" -> sort(value, a.bool(0, "reverse", false), a.bool(1, "case_sensitive", false),
                    a.get(2, "attribute", null));
            case "unique" -> unique(value, a.bool(0, "case_sensitive", false), a.get(1, "attribute", null));
            case "min", "max" -> {
                List<Object> sorted = sort(value, false, a.bool(0, "case_sensitive", false), a.get(1, "attribute", null));
                if (sorted.isEmpty()) {
                    yield new Undefined("No aggregated item, sequence was empty.");
                }
                yield name.equals("min") ? sorted.getFirst() : sorted.getLast();
            }
            case "sum" -> {
                Object attribute = a.get(0, "attribute", null);
                Object total = a.get(1, "start", 0L);
                for (Object item : Values.iterate(value)) {
                    total = Values.binary("+", total, attribute == null ? item : attribute(item, attribute, Args.MISSING));
                }
                yield total;
            }
            case "batch" -> {
                long size = a.integer(0, "linecount", 1);
                if (size <= 0) {
                    throw new TemplateException("batch size must be positive");
                }
                Object fill = a.get(1, "fill_with", null);
                List<Object> out = new ArrayList<>();
                List<Object> current = new ArrayList<>();
                for (Object item : Values.iterate(value)) {
                    current.add(item);
                    if (current.size() == size) {
                        out.add(current);
                        current = new ArrayList<>();
                    }
                }
                if (!current.isEmpty()) {
                    if (fill != null) {
                        while (current.size() < size) {
                            current.add(fill);
                        }
                    }
                    out.add(current);
                }
                yield out;
            }
            default -> throw new TemplateException("No filter named '" + name + "'.");
        };
    }

    /** jinja2's title: a word starts after a dash, whitespace or an opening bracket. */
    private static String title(String s) {
        StringBuilder out = new StringBuilder();
        Matcher m = WORD_BEGINNING.matcher(s);
        int last = 0;
        while (m.find()) {
            titleWord(out, s.substring(last, m.start()));
            out.append(m.group());
            last = m.end();
        }
        titleWord(out, s.substring(last));
        return out.toString();
    }

    private static void titleWord(StringBuilder out, String word) {
        if (!word.isEmpty()) {
            int first = word.codePointAt(0);
            out.append(Py.upper(Character.toString(first))).append(Py.lower(word.substring(Character.charCount(first))));
        }
    }

    private static String escape(String s) {
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> out.append("&amp;");
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '"' -> out.append("&#34;");
                case '\'' -> out.append("&#39;");
                default -> out.append(c);
            }
        }
        return out.toString();
    }

    private static String indent(String s, Args a) {
        Object width = a.get(0, "width", 4L);
        String indention = width instanceof String w ? w : " ".repeat((int) Values.toLong(width));
        boolean first = a.bool(1, "first", false);
        boolean blank = a.bool(2, "blank", false);
        List<String> lines = Py.splitLines(s + "\n");
        String rv;
        if (blank) {
            rv = String.join("\n" + indention, lines);
        } else {
            StringBuilder sb = new StringBuilder(lines.getFirst());
            for (String line : lines.subList(1, lines.size())) {
                sb.append('\n').append(line.isEmpty() ? line : indention + line);
            }
            rv = sb.toString();
        }
        return first ? indention + rv : rv;
    }

    private static Object toInt(Object value, Object fallback, int base) {
        if (value instanceof Long l) {
            return l;
        }
        if (value instanceof Boolean b) {
            return b ? 1L : 0L;
        }
        if (value instanceof Double d) {
            return Double.isFinite(d) ? (Object) (long) d.doubleValue() : fallback;
        }
        if (value instanceof String s) {
            String t = Py.strip(s, null).replace("_", "");
            try {
                if (base != 10 && t.length() > 2 && t.charAt(0) == '0' && Character.isLetter(t.charAt(1))) {
                    t = t.substring(2);
                }
                return Long.parseLong(t, base);
            } catch (NumberFormatException e) {
                Object f = toFloat(value, null);
                return f instanceof Double d && Double.isFinite(d) ? (Object) (long) d.doubleValue() : fallback;
            }
        }
        return fallback;
    }

    private static Object toFloat(Object value, Object fallback) {
        if (Values.isNumber(value)) {
            return Values.toDouble(value);
        }
        if (value instanceof String s) {
            String t = Py.strip(s, null).replace("_", "").toLowerCase(java.util.Locale.ROOT);
            switch (t) {
                case "inf", "+inf", "infinity", "+infinity" -> {
                    return Double.POSITIVE_INFINITY;
                }
                case "-inf", "-infinity" -> {
                    return Double.NEGATIVE_INFINITY;
                }
                case "nan", "+nan", "-nan" -> {
                    return Double.NaN;
                }
                default -> { }
            }
            if (t.matches("[+-]?(\\d+\\.?\\d*|\\.\\d+)(e[+-]?\\d+)?")) {
                return Double.parseDouble(t);
            }
        }
        return fallback;
    }

    private static Object round(Object value, int precision, String method) {
        double v = Values.toDouble(value);
        if (!Double.isFinite(v)) {
            return v;
        }
        RoundingMode mode = switch (method) {
            case "common" -> RoundingMode.HALF_EVEN;
            case "ceil" -> RoundingMode.CEILING;
            case "floor" -> RoundingMode.FLOOR;
            default -> throw new TemplateException("method must be common, ceil or floor");
        };
        if (method.equals("common")) {
            // Python's round() works on the exact binary value, which BigDecimal(double) is
            return new BigDecimal(v).setScale(precision, mode).doubleValue();
        }
        double scale = Math.pow(10, precision);
        return (mode == RoundingMode.CEILING ? Math.ceil(v * scale) : Math.floor(v * scale)) / scale;
    }

    /** transformers: {@code json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)}. */
    private static String tojson(Object value, Args a) {
        boolean ensureAscii = a.bool(0, "ensure_ascii", false);
        Object indentArg = a.get(1, "indent", null);
        String indent = switch (indentArg) {
            case null -> null;
            case String s -> s;
            default -> " ".repeat((int) Math.max(0, Values.toLong(indentArg)));
        };
        Object separators = a.get(2, "separators", null);
        String item = null;
        String key = null;
        if (separators != null) {
            List<Object> seps = Values.iterate(separators);
            if (seps.size() != 2) {
                throw new TemplateException("separators must be an (item_separator, key_separator) pair");
            }
            item = Values.str(seps.get(0));
            key = Values.str(seps.get(1));
        }
        return new PyJson(ensureAscii, indent, item, key, a.bool(3, "sort_keys", false)).dumps(value);
    }

    /** {@code environment.getitem} along a dotted path, as jinja2's attribute filters resolve it. */
    static Object attribute(Object item, Object path, Object fallback) {
        Object current = item;
        for (String part : Values.str(path).split("\\.")) {
            Object key = part.chars().allMatch(Character::isDigit) && !part.isEmpty() ? (Object) Long.parseLong(part) : part;
            current = Values.getItem(current, key);
        }
        if (current instanceof Undefined && fallback != Args.MISSING) {
            return fallback;
        }
        return current;
    }

    private static List<Object> map(Object value, List<Object> args, Map<String, Object> kwargs) {
        List<Object> out = new ArrayList<>();
        if (args.isEmpty() && kwargs.containsKey("attribute")) {
            Object attr = kwargs.get("attribute");
            Object fallback = kwargs.containsKey("default") ? kwargs.get("default") : Args.MISSING;
            for (Object item : Values.iterate(value)) {
                out.add(attribute(item, attr, fallback));
            }
            return out;
        }
        if (args.isEmpty()) {
            throw new TemplateException("map requires a filter argument");
        }
        String filter = Values.str(args.getFirst());
        List<Object> rest = args.subList(1, args.size());
        for (Object item : Values.iterate(value)) {
            out.add(apply(filter, item, rest, kwargs));
        }
        return out;
    }

    private static List<Object> select(Object value, Object attribute, List<Object> args, boolean keep) {
        List<Object> out = new ArrayList<>();
        String test = args.isEmpty() ? null : Values.str(args.getFirst());
        List<Object> testArgs = args.isEmpty() ? List.of() : args.subList(1, args.size());
        for (Object item : Values.iterate(value)) {
            Object subject = attribute == null ? item : attribute(item, attribute, Args.MISSING);
            boolean passed = test == null ? Values.truthy(subject) : Tests.apply(test, subject, testArgs, Map.of());
            if (passed == keep) {
                out.add(item);
            }
        }
        return out;
    }

    private static Comparator<Object> ordering(boolean caseSensitive, Object attribute) {
        return (x, y) -> {
            Object kx = sortKey(x, caseSensitive, attribute);
            Object ky = sortKey(y, caseSensitive, attribute);
            return Values.compare(kx, ky, "<");
        };
    }

    private static Object sortKey(Object item, boolean caseSensitive, Object attribute) {
        Object key = attribute == null ? item : attribute(item, attribute, Args.MISSING);
        return !caseSensitive && key instanceof String s ? Py.lower(s) : key;
    }

    private static List<Object> sort(Object value, boolean reverse, boolean caseSensitive, Object attribute) {
        List<Object> items = new ArrayList<>(Values.iterate(value));
        Comparator<Object> order = ordering(caseSensitive, attribute);
        items.sort(reverse ? order.reversed() : order);
        return items;
    }

    private static List<Object> unique(Object value, boolean caseSensitive, Object attribute) {
        List<Object> out = new ArrayList<>();
        List<Object> seen = new ArrayList<>();
        for (Object item : Values.iterate(value)) {
            Object key = sortKey(item, caseSensitive, attribute);
            if (seen.stream().noneMatch(k -> Values.eq(k, key))) {
                seen.add(key);
                out.add(item);
            }
        }
        return out;
    }

    private static List<Object> dictsort(Object value, Args a) {
        if (!(value instanceof Map<?, ?> m)) {
            throw new TemplateException("dictsort requires a mapping");
        }
        boolean caseSensitive = a.bool(0, "case_sensitive", false);
        String by = a.string(1, "by", "key");
        boolean reverse = a.bool(2, "reverse", false);
        int pos = switch (by) {
            case "key" -> 0;
            case "value" -> 1;
            default -> throw new TemplateException("You can only sort by either \"key\" or \"value\"");
        };
        List<Object> items = new ArrayList<>(Methods.items(m));
        Comparator<Object> order = (x, y) -> Values.compare(
                sortKey(((PyTuple) x).items().get(pos), caseSensitive, null),
                sortKey(((PyTuple) y).items().get(pos), caseSensitive, null), "<");
        items.sort(reverse ? order.reversed() : order);
        return items;
    }
}
