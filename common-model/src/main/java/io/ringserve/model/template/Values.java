package io.ringserve.model.template;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Python value semantics over plain Java values: {@code String}, {@code Boolean}, {@code Long}
 * (every int), {@code Double} (every float), {@code List}, {@code Map}, {@code null} (None),
 * plus {@link PyTuple}, {@link Undefined}, {@link Namespace}, {@link LoopContext} and {@link PyCallable}.
 */
final class Values {
    // mutating methods are refused, as jinja2's ImmutableSandboxedEnvironment refuses them
    private static final Set<String> UNSAFE_DICT = Set.of("pop", "popitem", "setdefault", "update", "clear");
    private static final Set<String> UNSAFE_LIST =
            Set.of("append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear");
    private static final long MAX_REPEAT = 10_000_000L;

    private Values() {
    }

    // ---------------------------------------------------------------- conversion

    /** Copies caller data into the template's value model (ints as Long, floats as Double). */
    static Object normalize(Object v) {
        return switch (v) {
            case null -> null;
            case String s -> s;
            case Boolean b -> b;
            case Long l -> l;
            case Double d -> d;
            case Integer i -> i.longValue();
            case Short s -> s.longValue();
            case Byte b -> b.longValue();
            case Float f -> Double.parseDouble(f.toString());
            case BigInteger bi -> bi.bitLength() < 64 ? (Object) bi.longValue() : (Object) bi.doubleValue();
            case BigDecimal bd -> bd.doubleValue();
            case Character c -> c.toString();
            case Map<?, ?> m -> {
                Map<Object, Object> out = new LinkedHashMap<>();
                m.forEach((k, val) -> out.put(normalize(k), normalize(val)));
                yield out;
            }
            case Collection<?> c -> {
                List<Object> out = new ArrayList<>(c.size());
                c.forEach(x -> out.add(normalize(x)));
                yield out;
            }
            case Object[] a -> normalize(java.util.Arrays.asList(a));
            case Enum<?> e -> e.name();
            default -> v;
        };
    }

    // ---------------------------------------------------------------- basic protocol

    static boolean truthy(Object v) {
        return switch (v) {
            case null -> false;
            case Boolean b -> b;
            case Long l -> l != 0;
            case Double d -> d != 0.0;
            case String s -> !s.isEmpty();
            case Collection<?> c -> !c.isEmpty();
            case Map<?, ?> m -> !m.isEmpty();
            case PyTuple t -> !t.items().isEmpty();
            case Undefined u -> false;
            default -> true;
        };
    }

    static String typeName(Object v) {
        return switch (v) {
            case null -> "NoneType";
            case String s -> "str";
            case Boolean b -> "bool";
            case Long l -> "int";
            case Double d -> "float";
            case List<?> l -> "list";
            case Map<?, ?> m -> "dict";
            case PyTuple t -> "tuple";
            case Undefined u -> "Undefined";
            case Namespace n -> "Namespace";
            case LoopContext l -> "LoopContext";
            case PyCallable c -> "function";
            default -> v.getClass().getSimpleName();
        };
    }

    /** {@code str(v)}, which is what {@code {{ v }}} prints. */
    static String str(Object v) {
        return switch (v) {
            case null -> "None";
            case String s -> s;
            case Boolean b -> b ? "True" : "False";
            case Long l -> l.toString();
            case Double d -> Py.floatRepr(d);
            case Undefined u -> "";
            case List<?> l -> join(l, "[", "]", false);
            case PyTuple t -> join(t.items(), "(", ")", t.items().size() == 1);
            case Map<?, ?> m -> {
                StringBuilder sb = new StringBuilder("{");
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!first) {
                        sb.append(", ");
                    }
                    first = false;
                    sb.append(repr(e.getKey())).append(": ").append(repr(e.getValue()));
                }
                yield sb.append('}').toString();
            }
            default -> v.toString();
        };
    }

    static String repr(Object v) {
        return switch (v) {
            case String s -> Py.repr(s);
            case Undefined u -> "Undefined";
            case null, default -> str(v);
        };
    }

    private static String join(List<?> items, String open, String close, boolean trailingComma) {
        StringBuilder sb = new StringBuilder(open);
        for (int i = 0; i < items.size(); i++) {
            if (i > 0) {
                sb.append(", ");
            }
            sb.append(repr(items.get(i)));
        }
        if (trailingComma) {
            sb.append(',');
        }
        return sb.append(close).toString();
    }

    static boolean isNumber(Object v) {
        return v instanceof Long || v instanceof Double || v instanceof Boolean;
    }

    static boolean isInt(Object v) {
        return v instanceof Long || v instanceof Boolean;
    }

    static long toLong(Object v) {
        return v instanceof Boolean b ? (b ? 1 : 0) : ((Number) v).longValue();
    }

    static double toDouble(Object v) {
        return v instanceof Boolean b ? (b ? 1 : 0) : ((Number) v).doubleValue();
    }

    /** Python's {@code ==}. */
    static boolean eq(Object a, Object b) {
        if (a == b) {
            return true;
        }
        if (a == null || b == null) {
            return false;
        }
        if (isNumber(a) && isNumber(b)) {
            if (isInt(a) && isInt(b)) {
                return toLong(a) == toLong(b);
            }
            return toDouble(a) == toDouble(b);
        }
        if (a instanceof List<?> la && b instanceof List<?> lb) {
            return seqEq(la, lb);
        }
        if (a instanceof PyTuple ta && b instanceof PyTuple tb) {
            return seqEq(ta.items(), tb.items());
        }
        if (a instanceof Map<?, ?> ma && b instanceof Map<?, ?> mb) {
            if (ma.size() != mb.size()) {
                return false;
            }
            for (Map.Entry<?, ?> e : ma.entrySet()) {
                Object other = mapLookup(mb, e.getKey());
                if (other == Args.MISSING || !eq(e.getValue(), other)) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof Undefined && b instanceof Undefined) {
            return true;
        }
        return a.equals(b);
    }

    private static boolean seqEq(List<?> a, List<?> b) {
        if (a.size() != b.size()) {
            return false;
        }
        for (int i = 0; i < a.size(); i++) {
            if (!eq(a.get(i), b.get(i))) {
                return false;
            }
        }
        return true;
    }

    /** Python's ordering for {@code < <= > >=}; {@code op} is only for the error message. */
    static int compare(Object a, Object b, String op) {
        if (isNumber(a) && isNumber(b)) {
            if (isInt(a) && isInt(b)) {
                return Long.compare(toLong(a), toLong(b));
            }
            return Double.compare(toDouble(a), toDouble(b));
        }
        if (a instanceof String sa && b instanceof String sb) {
            return compareStrings(sa, sb);
        }
        List<?> la = a instanceof PyTuple t ? t.items() : a instanceof List<?> l ? l : null;
        List<?> lb = b instanceof PyTuple t ? t.items() : b instanceof List<?> l ? l : null;
        if (la != null && lb != null && (a instanceof PyTuple) == (b instanceof PyTuple)) {
            for (int i = 0; i < Math.min(la.size(), lb.size()); i++) {
                if (!eq(la.get(i), lb.get(i))) {
                    return compare(la.get(i), lb.get(i), op);
                }
            }
            return Integer.compare(la.size(), lb.size());
        }
        if (a instanceof Undefined u) {
            throw u.error();
        }
        if (b instanceof Undefined u) {
            throw u.error();
        }
        throw new TemplateException("'" + op + "' not supported between instances of '" + typeName(a) + "' and '"
                + typeName(b) + "'");
    }

    /** Code point order, as Python compares strings (Java's compareTo orders UTF-16 units). */
    static int compareStrings(String a, String b) {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i);
            int cb = b.codePointAt(j);
            if (ca != cb) {
                return Integer.compare(ca, cb);
            }
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }

    /** What {@code for x in v} iterates over. */
    static List<Object> iterate(Object v) {
        return switch (v) {
            case List<?> l -> new ArrayList<>(l);
            case PyTuple t -> new ArrayList<>(t.items());
            case String s -> Py.chars(s);
            case Map<?, ?> m -> new ArrayList<>(m.keySet());
            case Undefined u -> new ArrayList<>();
            case null, default -> throw new TemplateException("'" + typeName(v) + "' object is not iterable");
        };
    }

    static long length(Object v) {
        return switch (v) {
            case String s -> Py.length(s);
            case Collection<?> c -> c.size();
            case Map<?, ?> m -> m.size();
            case PyTuple t -> t.items().size();
            case Undefined u -> 0;
            case Namespace n -> n.attributes.size();
            case null, default -> throw new TemplateException("object of type '" + typeName(v) + "' has no len()");
        };
    }

    /** Python's {@code item in container}. */
    static boolean contains(Object container, Object item) {
        return switch (container) {
            case String s -> {
                if (item instanceof String sub) {
                    yield s.contains(sub);
                }
                if (item instanceof Undefined u) {
                    throw u.error();
                }
                throw new TemplateException("'in <string>' requires string as left operand, not " + typeName(item));
            }
            case List<?> l -> l.stream().anyMatch(x -> eq(x, item));
            case PyTuple t -> t.items().stream().anyMatch(x -> eq(x, item));
            case Map<?, ?> m -> mapLookup(m, item) != Args.MISSING;
            case Undefined u -> false;
            case null, default -> throw new TemplateException("argument of type '" + typeName(container)
                    + "' is not iterable");
        };
    }

    /** A dict lookup where 1, 1.0 and True are the same key, as in Python; {@link Args#MISSING} if absent. */
    static Object mapLookup(Map<?, ?> m, Object key) {
        if (m.containsKey(key)) {
            return m.get(key);
        }
        if (isNumber(key)) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (isNumber(e.getKey()) && eq(e.getKey(), key)) {
                    return e.getValue();
                }
            }
        }
        return Args.MISSING;
    }

    // ---------------------------------------------------------------- attribute and item access

    /** {@code obj.name}: methods first, then keys, as jinja2's sandboxed getattr does. */
    static Object getAttr(Object obj, String name) {
        if (obj instanceof Undefined u) {
            throw u.error();
        }
        Object method = method(obj, name);
        if (method != null) {
            return method;
        }
        return switch (obj) {
            case Map<?, ?> m -> {
                Object v = mapLookup(m, name);
                yield v == Args.MISSING ? Undefined.attribute(obj, name) : v;
            }
            case Namespace ns -> ns.attributes.containsKey(name) ? ns.attributes.get(name) : Undefined.attribute(obj, name);
            case LoopContext loop -> loop.attribute(name);
            case null, default -> Undefined.attribute(obj, name);
        };
    }

    /** {@code obj[key]}: items first, then attributes (methods), as jinja2's sandboxed getitem does. */
    static Object getItem(Object obj, Object key) {
        if (obj instanceof Undefined u) {
            throw u.error();
        }
        switch (obj) {
            case Map<?, ?> m -> {
                Object v = mapLookup(m, key);
                if (v != Args.MISSING) {
                    return v;
                }
            }
            case List<?> l when isInt(key) -> {
                return index(l, key, obj);
            }
            case PyTuple t when isInt(key) -> {
                return index(t.items(), key, obj);
            }
            case String s when isInt(key) -> {
                List<Object> chars = Py.chars(s);
                return index(chars, key, obj);
            }
            default -> { }
        }
        if (key instanceof String name) {
            Object attr = getAttr(obj, name);
            if (!(attr instanceof Undefined)) {
                return attr;
            }
            return Undefined.attribute(obj, name);
        }
        return Undefined.element(obj, key);
    }

    private static Object index(List<?> list, Object key, Object owner) {
        long i = toLong(key);
        if (i < 0) {
            i += list.size();
        }
        if (i < 0 || i >= list.size()) {
            return Undefined.element(owner, key);
        }
        return list.get((int) i);
    }

    /** {@code obj[start:stop:step]} with Python's clamping rules. */
    static Object slice(Object obj, Object start, Object stop, Object step) {
        if (obj instanceof Undefined u) {
            throw u.error();
        }
        for (Object bound : new Object[] {start, stop, step}) {
            if (bound != null && !isInt(bound)) {
                return new Undefined("slice indices must be integers or None");
            }
        }
        List<?> items = switch (obj) {
            case List<?> l -> l;
            case PyTuple t -> t.items();
            case String s -> Py.chars(s);
            case null, default -> null;
        };
        if (items == null) {
            return new Undefined("'" + typeName(obj) + "' object is not subscriptable");
        }
        long n = items.size();
        long st = step == null ? 1 : toLong(step);
        if (st == 0) {
            throw new TemplateException("slice step cannot be zero");
        }
        long lower = st > 0 ? 0 : -1;
        long upper = st > 0 ? n : n - 1;
        long from = start == null ? (st > 0 ? lower : upper) : clamp(toLong(start), n, lower, upper);
        long to = stop == null ? (st > 0 ? upper : lower) : clamp(toLong(stop), n, lower, upper);
        List<Object> out = new ArrayList<>();
        for (long i = from; st > 0 ? i < to : i > to; i += st) {
            out.add(items.get((int) i));
        }
        return switch (obj) {
            case String s -> String.join("", out.stream().map(String.class::cast).toList());
            case PyTuple t -> new PyTuple(out);
            default -> out;
        };
    }

    private static long clamp(long i, long n, long lower, long upper) {
        if (i < 0) {
            return Math.max(i + n, lower);
        }
        return Math.min(i, upper);
    }

    private static Object method(Object obj, String name) {
        switch (obj) {
            case String s -> {
                return Methods.string(s, name);
            }
            case Map<?, ?> m -> {
                if (UNSAFE_DICT.contains(name)) {
                    return unsafe(name, "dict");
                }
                return Methods.dict(m, name);
            }
            case List<?> l -> {
                if (UNSAFE_LIST.contains(name)) {
                    return unsafe(name, "list");
                }
                return Methods.sequence(l, name);
            }
            case PyTuple t -> {
                return Methods.sequence(t.items(), name);
            }
            case null, default -> {
                return null;
            }
        }
    }

    private static Undefined unsafe(String name, String type) {
        return new Undefined("access to attribute '" + name + "' of '" + type + "' object is unsafe.");
    }

    // ---------------------------------------------------------------- operators

    static Object binary(String op, Object a, Object b) {
        if (op.equals("~")) {
            return str(a) + str(b);
        }
        if (a instanceof Undefined u) {
            throw u.error();
        }
        if (b instanceof Undefined u) {
            throw u.error();
        }
        if (op.equals("%") && a instanceof String fmt) {
            return Formats.percent(fmt, b);
        }
        if (isNumber(a) && isNumber(b)) {
            return arithmetic(op, a, b);
        }
        switch (op) {
            case "+" -> {
                if (a instanceof String sa && b instanceof String sb) {
                    return sa + sb;
                }
                if (a instanceof List<?> la && b instanceof List<?> lb) {
                    List<Object> out = new ArrayList<>(la);
                    out.addAll(lb);
                    return out;
                }
                if (a instanceof PyTuple ta && b instanceof PyTuple tb) {
                    List<Object> out = new ArrayList<>(ta.items());
                    out.addAll(tb.items());
                    return new PyTuple(out);
                }
                if (a instanceof String || a instanceof List<?> || a instanceof PyTuple) {
                    throw new TemplateException("can only concatenate " + typeName(a) + " (not \"" + typeName(b)
                            + "\") to " + typeName(a));
                }
            }
            case "*" -> {
                if (isInt(b) && (a instanceof String || a instanceof List<?> || a instanceof PyTuple)) {
                    return repeat(a, toLong(b));
                }
                if (isInt(a) && (b instanceof String || b instanceof List<?> || b instanceof PyTuple)) {
                    return repeat(b, toLong(a));
                }
            }
            default -> { }
        }
        throw new TemplateException("unsupported operand type(s) for " + op + ": '" + typeName(a) + "' and '"
                + typeName(b) + "'");
    }

    private static Object repeat(Object seq, long times) {
        long n = Math.max(0, times);
        long size = seq instanceof String s ? s.length() : length(seq);
        if (size * n > MAX_REPEAT) {
            throw new TemplateException("repetition result too large");
        }
        if (seq instanceof String s) {
            return s.repeat((int) n);
        }
        List<?> items = seq instanceof PyTuple t ? t.items() : (List<?>) seq;
        List<Object> out = new ArrayList<>();
        for (long i = 0; i < n; i++) {
            out.addAll(items);
        }
        return seq instanceof PyTuple ? new PyTuple(out) : out;
    }

    private static Object arithmetic(String op, Object a, Object b) {
        boolean ints = isInt(a) && isInt(b);
        try {
            if (ints) {
                long x = toLong(a);
                long y = toLong(b);
                return switch (op) {
                    case "+" -> Math.addExact(x, y);
                    case "-" -> Math.subtractExact(x, y);
                    case "*" -> Math.multiplyExact(x, y);
                    case "/" -> {
                        if (y == 0) {
                            throw new TemplateException("division by zero");
                        }
                        yield (double) x / y;
                    }
                    case "//" -> {
                        if (y == 0) {
                            throw new TemplateException("integer division or modulo by zero");
                        }
                        yield Math.floorDiv(x, y);
                    }
                    case "%" -> {
                        if (y == 0) {
                            throw new TemplateException("integer division or modulo by zero");
                        }
                        yield Math.floorMod(x, y);
                    }
                    case "**" -> power(x, y);
                    default -> throw new IllegalArgumentException(op);
                };
            }
        } catch (ArithmeticException e) {
            throw new TemplateException("integer overflow in '" + op + "'");
        }
        double x = toDouble(a);
        double y = toDouble(b);
        return switch (op) {
            case "+" -> x + y;
            case "-" -> x - y;
            case "*" -> x * y;
            case "/" -> {
                if (y == 0) {
                    throw new TemplateException("float division by zero");
                }
                yield x / y;
            }
            case "//" -> {
                if (y == 0) {
                    throw new TemplateException("float floor division by zero");
                }
                yield Math.floor(x / y);
            }
            case "%" -> {
                if (y == 0) {
                    throw new TemplateException("float modulo");
                }
                double mod = x % y;
                if (mod != 0 && (y < 0) != (mod < 0)) {
                    mod += y;
                } else if (mod == 0) {
                    mod = Math.copySign(0.0, y);
                }
                yield mod;
            }
            case "**" -> {
                if (x == 0 && y < 0) {
                    throw new TemplateException("0.0 cannot be raised to a negative power");
                }
                yield Math.pow(x, y);
            }
            default -> throw new IllegalArgumentException(op);
        };
    }

    private static Object power(long base, long exp) {
        if (exp < 0) {
            if (base == 0) {
                throw new TemplateException("0.0 cannot be raised to a negative power");
            }
            return Math.pow(base, exp);
        }
        long result = 1;
        long b = base;
        for (long e = exp; e > 0; e >>= 1) {
            if ((e & 1) != 0) {
                result = Math.multiplyExact(result, b);
            }
            if (e > 1) {
                b = Math.multiplyExact(b, b);
            }
        }
        return result;
    }

    static Object negate(Object v) {
        if (v instanceof Undefined u) {
            throw u.error();
        }
        if (v instanceof Double d) {
            return -d;
        }
        if (isInt(v)) {
            return Math.negateExact(toLong(v));
        }
        throw new TemplateException("bad operand type for unary -: '" + typeName(v) + "'");
    }

    static Object plus(Object v) {
        if (v instanceof Undefined u) {
            throw u.error();
        }
        if (v instanceof Double) {
            return v;
        }
        if (isInt(v)) {
            return toLong(v);
        }
        throw new TemplateException("bad operand type for unary +: '" + typeName(v) + "'");
    }
}
