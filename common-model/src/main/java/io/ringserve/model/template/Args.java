package io.ringserve.model.template;

import java.util.List;
import java.util.Map;

/**
 * Positional and keyword arguments of a call, read the way Python binds them: a parameter is
 * found at its position or under its name.
 */
record Args(String function, List<Object> positional, Map<String, Object> keywords) {

    static final Object MISSING = new Object() {
        @Override
        public String toString() {
            return "<missing>";
        }
    };

    boolean has(int index, String name) {
        return get(index, name) != MISSING;
    }

    /** The argument, or {@link #MISSING}. */
    Object get(int index, String name) {
        if (index >= 0 && index < positional.size()) {
            return positional.get(index);
        }
        if (name != null && keywords.containsKey(name)) {
            return keywords.get(name);
        }
        return MISSING;
    }

    Object get(int index, String name, Object fallback) {
        Object v = get(index, name);
        return v == MISSING ? fallback : v;
    }

    Object required(int index, String name) {
        Object v = get(index, name);
        if (v == MISSING) {
            throw new TemplateException(function + "() missing required argument '" + name + "' (pos " + (index + 1) + ")");
        }
        return v;
    }

    String string(int index, String name, String fallback) {
        Object v = get(index, name, fallback);
        if (v == null || v instanceof String) {
            return (String) v;
        }
        if (v instanceof Undefined u) {
            throw u.error();
        }
        throw new TemplateException(function + "() argument '" + name + "' must be str, not " + Values.typeName(v));
    }

    long integer(int index, String name, long fallback) {
        Object v = get(index, name, fallback);
        if (v instanceof Long l) {
            return l;
        }
        if (v instanceof Boolean b) {
            return b ? 1 : 0;
        }
        if (v instanceof Undefined u) {
            throw u.error();
        }
        throw new TemplateException(function + "() argument '" + name + "' must be an integer, not " + Values.typeName(v));
    }

    boolean bool(int index, String name, boolean fallback) {
        return Values.truthy(get(index, name, fallback));
    }

    int size() {
        return positional.size();
    }
}
