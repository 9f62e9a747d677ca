package io.ringserve.model.template;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.time.LocalDateTime;
import java.time.format.TextStyle;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Python string formatting: {@code "%s" % x}, {@code "{}".format(x)}, format specs and strftime. */
final class Formats {
    private Formats() {
    }

    // ---------------------------------------------------------------- printf-style "%"

    static String percent(String fmt, Object arg) {
        List<Object> values = arg instanceof PyTuple t ? t.items() : List.of(arg == null ? NONE : arg);
        Map<?, ?> mapping = arg instanceof Map<?, ?> m ? m : null;
        StringBuilder out = new StringBuilder();
        int next = 0;
        int i = 0;
        int n = fmt.length();
        while (i < n) {
            char c = fmt.charAt(i++);
            if (c != '%') {
                out.append(c);
                continue;
            }
            if (i >= n) {
                throw new TemplateException("incomplete format");
            }
            if (fmt.charAt(i) == '%') {
                out.append('%');
                i++;
                continue;
            }
            Object value = MISSING;
            if (fmt.charAt(i) == '(') {
                int close = fmt.indexOf(')', i);
                if (mapping == null || close < 0) {
                    throw new TemplateException("format requires a mapping");
                }
                Object v = Values.mapLookup(mapping, fmt.substring(i + 1, close));
                if (v == Args.MISSING) {
                    throw new TemplateException("KeyError: " + Py.repr(fmt.substring(i + 1, close)));
                }
                value = v;
                i = close + 1;
            }
            Spec spec = new Spec();
            while (i < n && "-+ #0".indexOf(fmt.charAt(i)) >= 0) {
                switch (fmt.charAt(i++)) {
                    case '-' -> spec.align = '<';
                    case '+' -> spec.sign = '+';
                    case ' ' -> spec.sign = spec.sign == '+' ? '+' : ' ';
                    case '#' -> spec.alternate = true;
                    default -> spec.zero = true;
                }
            }
            if (i < n && fmt.charAt(i) == '*') {
                spec.width = (int) Values.toLong(values.get(next++));
                i++;
            } else {
                int start = i;
                while (i < n && Character.isDigit(fmt.charAt(i))) {
                    i++;
                }
                spec.width = start == i ? -1 : Integer.parseInt(fmt.substring(start, i));
            }
            if (i < n && fmt.charAt(i) == '.') {
                i++;
                if (i < n && fmt.charAt(i) == '*') {
                    spec.precision = (int) Values.toLong(values.get(next++));
                    i++;
                } else {
                    int start = i;
                    while (i < n && Character.isDigit(fmt.charAt(i))) {
                        i++;
                    }
                    spec.precision = start == i ? 0 : Integer.parseInt(fmt.substring(start, i));
                }
            }
            while (i < n && "hlL".indexOf(fmt.charAt(i)) >= 0) {
                i++;
            }
            if (i >= n) {
                throw new TemplateException("incomplete format");
            }
            spec.type = fmt.charAt(i++);
            if (value == MISSING) {
                if (next >= values.size()) {
                    throw new TemplateException("not enough arguments for format string");
                }
                value = values.get(next++);
            }
            if (value == NONE) {
                value = null;
            }
            if (spec.align == 0) {
                spec.align = '>';
            }
            out.append(switch (spec.type) {
                case 's' -> applySpec(Values.str(value), spec, true);
                case 'r', 'a' -> applySpec(Values.repr(value), spec, true);
                case 'd', 'i', 'u' -> {
                    spec.type = 'd';
                    yield formatNumber(requireNumber(value, "%d"), spec);
                }
                case 'c' -> applySpec(value instanceof String s ? s : Character.toString((int) Values.toLong(value)),
                        spec, true);
                case 'f', 'F', 'e', 'E', 'g', 'G', 'x', 'X', 'o' ->
                        formatNumber(requireNumber(value, "%" + spec.type), spec);
                default -> throw new TemplateException("unsupported format character '" + spec.type + "'");
            });
        }
        if (mapping == null && next < values.size()) {
            throw new TemplateException("not all arguments converted during string formatting");
        }
        return out.toString();
    }

    private static final Object MISSING = new Object();
    private static final Object NONE = new Object();

    private static Object requireNumber(Object v, String what) {
        if (Values.isNumber(v)) {
            return v;
        }
        if (v instanceof Undefined u) {
            throw u.error();
        }
        throw new TemplateException(what + " format: a real number is required, not " + Values.typeName(v));
    }

    // ---------------------------------------------------------------- str.format

    static String braces(String fmt, List<Object> args, Map<String, Object> kwargs) {
        StringBuilder out = new StringBuilder();
        int auto = 0;
        int i = 0;
        int n = fmt.length();
        while (i < n) {
            char c = fmt.charAt(i);
            if (c == '{' && i + 1 < n && fmt.charAt(i + 1) == '{') {
                out.append('{');
                i += 2;
            } else if (c == '}' && i + 1 < n && fmt.charAt(i + 1) == '}') {
                out.append('}');
                i += 2;
            } else if (c == '}') {
                throw new TemplateException("Single '}' encountered in format string");
            } else if (c == '{') {
                int close = fmt.indexOf('}', i);
                if (close < 0) {
                    throw new TemplateException("Single '{' encountered in format string");
                }
                String field = fmt.substring(i + 1, close);
                i = close + 1;
                String spec = "";
                int colon = field.indexOf(':');
                if (colon >= 0) {
                    spec = field.substring(colon + 1);
                    field = field.substring(0, colon);
                }
                char conversion = 0;
                int bang = field.indexOf('!');
                if (bang >= 0) {
                    conversion = bang + 1 < field.length() ? field.charAt(bang + 1) : 0;
                    field = field.substring(0, bang);
                }
                int end = 0;
                while (end < field.length() && field.charAt(end) != '.' && field.charAt(end) != '[') {
                    end++;
                }
                String head = field.substring(0, end);
                Object value;
                if (head.isEmpty()) {
                    value = positional(args, auto++);
                } else if (head.chars().allMatch(Character::isDigit)) {
                    value = positional(args, Integer.parseInt(head));
                } else if (kwargs.containsKey(head)) {
                    value = kwargs.get(head);
                } else {
                    throw new TemplateException("KeyError: " + Py.repr(head));
                }
                value = accessors(value, field.substring(end));
                if (conversion == 'r' || conversion == 'a') {
                    value = Values.repr(value);
                } else if (conversion == 's') {
                    value = Values.str(value);
                }
                out.append(formatValue(value, spec));
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    private static Object positional(List<Object> args, int index) {
        if (index >= args.size()) {
            throw new TemplateException("Replacement index " + index + " out of range for positional args tuple");
        }
        return args.get(index);
    }

    private static Object accessors(Object value, String rest) {
        int i = 0;
        while (i < rest.length()) {
            if (rest.charAt(i) == '.') {
                int end = i + 1;
                while (end < rest.length() && rest.charAt(end) != '.' && rest.charAt(end) != '[') {
                    end++;
                }
                value = Values.getAttr(value, rest.substring(i + 1, end));
                i = end;
            } else {
                int close = rest.indexOf(']', i);
                String key = rest.substring(i + 1, close);
                value = Values.getItem(value, key.chars().allMatch(Character::isDigit) && !key.isEmpty()
                        ? (Object) Long.parseLong(key) : key);
                i = close + 1;
            }
        }
        return value;
    }

    /** {@code format(value, spec)} for the spec mini-language: {@code [[fill]align][sign][#][0][width][,][.prec][type]}. */
    static String formatValue(Object value, String specText) {
        if (specText.isEmpty()) {
            return Values.str(value);
        }
        Spec spec = new Spec();
        int i = 0;
        int n = specText.length();
        if (n >= 2 && "<>^=".indexOf(specText.charAt(1)) >= 0) {
            spec.fill = specText.charAt(0);
            spec.align = specText.charAt(1);
            i = 2;
        } else if ("<>^=".indexOf(specText.charAt(0)) >= 0) {
            spec.align = specText.charAt(0);
            i = 1;
        }
        if (i < n && "+- ".indexOf(specText.charAt(i)) >= 0) {
            spec.sign = specText.charAt(i++);
        }
        if (i < n && specText.charAt(i) == '#') {
            spec.alternate = true;
            i++;
        }
        if (i < n && specText.charAt(i) == '0') {
            spec.zero = true;
            i++;
        }
        int start = i;
        while (i < n && Character.isDigit(specText.charAt(i))) {
            i++;
        }
        spec.width = start == i ? -1 : Integer.parseInt(specText.substring(start, i));
        if (i < n && (specText.charAt(i) == ',' || specText.charAt(i) == '_')) {
            spec.grouping = specText.charAt(i++);
        }
        if (i < n && specText.charAt(i) == '.') {
            start = ++i;
            while (i < n && Character.isDigit(specText.charAt(i))) {
                i++;
            }
            spec.precision = Integer.parseInt(specText.substring(start, i));
        }
        if (i < n) {
            spec.type = specText.charAt(i++);
        }
        if (i != n) {
            throw new TemplateException("Invalid format specifier '" + specText + "'");
        }
        if (value instanceof String s) {
            if (spec.type != 0 && spec.type != 's') {
                throw new TemplateException("Unknown format code '" + spec.type + "' for object of type 'str'");
            }
            if (spec.align == 0) {
                spec.align = '<';
            }
            return applySpec(s, spec, true);
        }
        if (!Values.isNumber(value)) {
            throw new TemplateException("unsupported format string passed to " + Values.typeName(value) + ".__format__");
        }
        if (spec.align == 0) {
            spec.align = '>';
        }
        if (spec.type == 0) {
            spec.type = value instanceof Double ? (spec.precision >= 0 ? 'g' : 'r') : 'd';
        }
        return formatNumber(value, spec);
    }

    private static final class Spec {
        char fill = ' ';
        char align;
        char sign = '-';
        boolean alternate;
        boolean zero;
        int width = -1;
        char grouping;
        int precision = -1;
        char type;
    }

    private static String applySpec(String s, Spec spec, boolean truncate) {
        if (truncate && spec.precision >= 0 && Py.length(s) > spec.precision) {
            s = s.substring(0, s.offsetByCodePoints(0, spec.precision));
        }
        return Methods.pad(s, spec.width, String.valueOf(spec.fill), spec.align == 0 ? '<' : spec.align);
    }

    private static String formatNumber(Object value, Spec spec) {
        boolean negative;
        String body;
        char type = spec.type;
        if (type == 'd' || type == 'x' || type == 'X' || type == 'o' || type == 'b') {
            long v = value instanceof Double d ? (long) d.doubleValue() : Values.toLong(value);
            negative = v < 0;
            long abs = Math.abs(v);
            body = switch (type) {
                case 'x' -> (spec.alternate ? "0x" : "") + Long.toHexString(abs);
                case 'X' -> (spec.alternate ? "0X" : "") + Long.toHexString(abs).toUpperCase(Locale.ROOT);
                case 'o' -> (spec.alternate ? "0o" : "") + Long.toOctalString(abs);
                case 'b' -> (spec.alternate ? "0b" : "") + Long.toBinaryString(abs);
                default -> group(Long.toString(abs), spec.grouping);
            };
        } else {
            double v = Values.toDouble(value);
            negative = v < 0 || (v == 0 && 1 / v < 0);
            double abs = Math.abs(v);
            int p = spec.precision < 0 ? 6 : spec.precision;
            if (Double.isNaN(v) || Double.isInfinite(v)) {
                body = Double.isNaN(v) ? "nan" : "inf";
                if (Character.isUpperCase(type)) {
                    body = body.toUpperCase(Locale.ROOT);
                }
            } else {
                body = switch (type) {
                    case 'f', 'F' -> fixed(abs, p, spec.grouping);
                    case 'e', 'E' -> scientific(abs, p, type == 'E');
                    case 'g', 'G' -> general(abs, spec.precision < 0 ? 6 : spec.precision, spec.alternate, type == 'G');
                    case '%' -> fixed(abs * 100, p, spec.grouping) + "%";
                    case 'r' -> Py.floatRepr(abs);
                    default -> throw new TemplateException("Unknown format code '" + type + "' for object of type 'float'");
                };
            }
        }
        String signText = negative ? "-" : spec.sign == '+' ? "+" : spec.sign == ' ' ? " " : "";
        if (spec.zero && spec.width > 0 && spec.align != '<' && spec.align != '^') {
            int pad = spec.width - signText.length() - body.length();
            return signText + "0".repeat(Math.max(0, pad)) + body;
        }
        if (spec.align == '=') {
            int pad = spec.width - signText.length() - body.length();
            return signText + String.valueOf(spec.fill).repeat(Math.max(0, pad)) + body;
        }
        return Methods.pad(signText + body, spec.width, String.valueOf(spec.fill), spec.align == 0 ? '>' : spec.align);
    }

    private static String fixed(double v, int precision, char grouping) {
        String s = new BigDecimal(v).setScale(precision, RoundingMode.HALF_EVEN).toPlainString();
        if (grouping == 0) {
            return s;
        }
        int dot = s.indexOf('.');
        return group(dot < 0 ? s : s.substring(0, dot), grouping) + (dot < 0 ? "" : s.substring(dot));
    }

    private static String scientific(double v, int precision, boolean upper) {
        String s;
        if (v == 0) {
            s = (precision > 0 ? "0." + "0".repeat(precision) : "0") + "e+00";
        } else {
            BigDecimal bd = new BigDecimal(v).round(new MathContext(precision + 1, RoundingMode.HALF_EVEN));
            int exp = bd.precision() - bd.scale() - 1;
            String digits = bd.unscaledValue().toString();
            digits = (digits + "0".repeat(precision + 1)).substring(0, precision + 1);
            String mantissa = precision > 0 ? digits.charAt(0) + "." + digits.substring(1) : digits;
            s = mantissa + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
        }
        return upper ? s.toUpperCase(Locale.ROOT) : s;
    }

    private static String general(double v, int precision, boolean alternate, boolean upper) {
        int p = precision == 0 ? 1 : precision;
        int exp;
        if (v == 0) {
            exp = 0;
        } else {
            BigDecimal bd = new BigDecimal(v).round(new MathContext(p, RoundingMode.HALF_EVEN));
            exp = bd.precision() - bd.scale() - 1;
        }
        String s;
        if (exp >= -4 && exp < p) {
            s = fixed(v, p - 1 - exp, (char) 0);
        } else {
            s = scientific(v, p - 1, upper);
        }
        if (!alternate) {
            int e = s.indexOf(upper ? 'E' : 'e');
            String mantissa = e < 0 ? s : s.substring(0, e);
            String exponent = e < 0 ? "" : s.substring(e);
            if (mantissa.contains(".")) {
                mantissa = mantissa.replaceAll("0+$", "");
                if (mantissa.endsWith(".")) {
                    mantissa = mantissa.substring(0, mantissa.length() - 1);
                }
            }
            s = mantissa + exponent;
        }
        return s;
    }

    private static String group(String digits, char sep) {
        if (sep == 0) {
            return digits;
        }
        StringBuilder out = new StringBuilder();
        int first = digits.length() % 3;
        for (int i = 0; i < digits.length(); i++) {
            if (i > 0 && (i - first) % 3 == 0) {
                out.append(sep);
            }
            out.append(digits.charAt(i));
        }
        return out.toString();
    }

    // ---------------------------------------------------------------- strftime

    /** C {@code strftime} for the directives chat templates use (dates in system prompts). */
    static String strftime(String fmt, LocalDateTime t) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < fmt.length(); i++) {
            char c = fmt.charAt(i);
            if (c != '%' || i + 1 >= fmt.length()) {
                out.append(c);
                continue;
            }
            char d = fmt.charAt(++i);
            boolean noPad = false;
            if (d == '-' && i + 1 < fmt.length()) {
                noPad = true;
                d = fmt.charAt(++i);
            }
            int hour12 = t.getHour() % 12 == 0 ? 12 : t.getHour() % 12;
            out.append(switch (d) {
                case 'Y' -> Integer.toString(t.getYear());
                case 'y' -> two(t.getYear() % 100, noPad);
                case 'm' -> two(t.getMonthValue(), noPad);
                case 'd' -> two(t.getDayOfMonth(), noPad);
                case 'e' -> String.format("%2d", t.getDayOfMonth());
                case 'H' -> two(t.getHour(), noPad);
                case 'I' -> two(hour12, noPad);
                case 'M' -> two(t.getMinute(), noPad);
                case 'S' -> two(t.getSecond(), noPad);
                case 'f' -> String.format("%06d", t.getNano() / 1000);
                case 'p' -> t.getHour() < 12 ? "AM" : "PM";
                case 'j' -> noPad ? Integer.toString(t.getDayOfYear()) : String.format("%03d", t.getDayOfYear());
                case 'a' -> t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.US);
                case 'A' -> t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.US);
                case 'b', 'h' -> t.getMonth().getDisplayName(TextStyle.SHORT, Locale.US);
                case 'B' -> t.getMonth().getDisplayName(TextStyle.FULL, Locale.US);
                case 'w' -> Integer.toString(t.getDayOfWeek().getValue() % 7);
                case 'u' -> Integer.toString(t.getDayOfWeek().getValue());
                case 'F' -> strftime("%Y-%m-%d", t);
                case 'T' -> strftime("%H:%M:%S", t);
                case 'D' -> strftime("%m/%d/%y", t);
                case 'R' -> strftime("%H:%M", t);
                case 'c' -> strftime("%a %b %e %H:%M:%S %Y", t);
                case 'x' -> strftime("%m/%d/%y", t);
                case 'X' -> strftime("%H:%M:%S", t);
                case 'z', 'Z' -> "";
                case 'n' -> "\n";
                case 't' -> "\t";
                case '%' -> "%";
                default -> "%" + (noPad ? "-" : "") + d;
            });
        }
        return out.toString();
    }

    private static String two(int v, boolean noPad) {
        return noPad || v >= 10 ? Integer.toString(v) : "0" + v;
    }
}
