package io.ringserve.model.template;

import java.util.List;
import java.util.Map;

/** jinja2's builtin tests ({@code x is name(args)}). */
final class Tests {
    private Tests() {
    }

    static boolean apply(String name, Object value, List<Object> args, Map<String, Object> kwargs) {
        Args a = new Args(name, args, kwargs);
        return switch (name) {
            case "defined" -> !(value instanceof Undefined);
            case "undefined" -> value instanceof Undefined;
            case "none" -> value == null;
            case "boolean" -> value instanceof Boolean;
            case "true" -> Boolean.TRUE.equals(value);
            case "false" -> Boolean.FALSE.equals(value);
            case "integer" -> value instanceof Long;
            case "float" -> value instanceof Double;
            case "number" -> Values.isNumber(value);
            case "string" -> value instanceof String;
            case "mapping" -> value instanceof Map<?, ?>;
            case "sequence" -> value instanceof String || value instanceof List<?> || value instanceof PyTuple
                    || value instanceof Map<?, ?> || value instanceof Undefined;
            case "iterable" -> value instanceof String || value instanceof List<?> || value instanceof PyTuple
                    || value instanceof Map<?, ?> || value instanceof Undefined;
            case "callable" -> value instanceof PyCallable;
            case "odd" -> integer(value, name) % 2 != 0;
            case "even" -> integer(value, name) % 2 == 0;
            case "divisibleby" -> {
                long d = a.integer(0, "num", 1);
                if (d == 0) {
                    throw new TemplateException("integer division or modulo by zero");
                }
                yield integer(value, name) % d == 0;
            }
            case "eq", "equalto", "==" -> Values.eq(value, a.required(0, "other"));
            case "ne", "!=" -> !Values.eq(value, a.required(0, "other"));
            case "lt", "lessthan", "<" -> Values.compare(value, a.required(0, "other"), "<") < 0;
            case "le", "<=" -> Values.compare(value, a.required(0, "other"), "<=") <= 0;
            case "gt", "greaterthan", ">" -> Values.compare(value, a.required(0, "other"), ">") > 0;
            case "ge", ">=" -> Values.compare(value, a.required(0, "other"), ">=") >= 0;
            case "in" -> Values.contains(a.required(0, "seq"), value);
            case "sameas" -> {
                Object other = a.required(0, "other");
                yield value == other || (value instanceof Boolean && value.equals(other));
            }
            case "lower" -> Values.truthy(Methods.string(Values.str(value), "islower").call(List.of(), Map.of()));
            case "upper" -> Values.truthy(Methods.string(Values.str(value), "isupper").call(List.of(), Map.of()));
            case "escaped" -> false;
            case "filter" -> Filters.exists(Values.str(value));
            case "test" -> exists(Values.str(value));
            default -> throw new TemplateException("No test named '" + name + "'.");
        };
    }

    static boolean exists(String name) {
        return switch (name) {
            case "defined", "undefined", "none", "boolean", "true", "false", "integer", "float", "number", "string",
                 "mapping", "sequence", "iterable", "callable", "odd", "even", "divisibleby", "eq", "equalto", "==",
                 "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=", "in", "sameas",
                 "lower", "upper", "escaped", "filter", "test" -> true;
            default -> false;
        };
    }

    private static long integer(Object value, String test) {
        if (Values.isInt(value)) {
            return Values.toLong(value);
        }
        if (value instanceof Undefined u) {
            throw u.error();
        }
        if (value instanceof Double d && d == Math.rint(d)) {
            return d.longValue();
        }
        throw new TemplateException("test '" + test + "' needs an integer, got " + Values.typeName(value));
    }
}
