package io.ringserve.model.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Typed access to the keys of one JSON object read from a file, with Hugging Face's defaults for absent
 * keys and errors that name the file and the key. A key present with JSON {@code null} counts as absent,
 * as it does for {@code PretrainedConfig}.
 */
final class JsonFields {
    private static final JsonMapper MAPPER = JsonMapper.builder().build();

    private final String source;
    private final JsonNode root;

    private JsonFields(String source, JsonNode root) {
        this.source = source;
        this.root = root;
    }

    static JsonFields read(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new ConfigException(file + ": file not found");
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot be read (" + e.getMessage() + ")", e);
        }
        return parse(file.toString(), text);
    }

    static JsonFields parse(String source, String text) {
        JsonNode root;
        try {
            root = MAPPER.readTree(text);
        } catch (JacksonException e) {
            throw new ConfigException(source + ": not valid JSON (" + e.getOriginalMessage() + ")", e);
        }
        if (root == null || !root.isObject()) {
            throw new ConfigException(source + ": expected a JSON object at the top level");
        }
        return new JsonFields(source, root);
    }

    String source() {
        return source;
    }

    boolean has(String key) {
        JsonNode n = root.get(key);
        return n != null && !n.isNull();
    }

    JsonNode node(String key) {
        return root.get(key);
    }

    int intOr(String key, int fallback) {
        if (!has(key)) {
            return fallback;
        }
        JsonNode n = root.get(key);
        if (n.isIntegralNumber() && n.canConvertToInt()) {
            return n.intValue();
        }
        if (n.isFloatingPointNumber() && n.doubleValue() == Math.rint(n.doubleValue()) && Math.abs(n.doubleValue()) < Integer.MAX_VALUE) {
            return (int) n.doubleValue();
        }
        throw bad(key, "an integer", n);
    }

    Integer intOrNull(String key) {
        return has(key) ? intOr(key, 0) : null;
    }

    double doubleOr(String key, double fallback) {
        if (!has(key)) {
            return fallback;
        }
        JsonNode n = root.get(key);
        if (n.isNumber()) {
            return n.doubleValue();
        }
        throw bad(key, "a number", n);
    }

    Double doubleOrNull(String key) {
        return has(key) ? doubleOr(key, 0) : null;
    }

    boolean boolOr(String key, boolean fallback) {
        if (!has(key)) {
            return fallback;
        }
        JsonNode n = root.get(key);
        if (n.isBoolean()) {
            return n.booleanValue();
        }
        throw bad(key, "true or false", n);
    }

    String stringOr(String key, String fallback) {
        if (!has(key)) {
            return fallback;
        }
        JsonNode n = root.get(key);
        if (n.isString()) {
            return n.stringValue();
        }
        throw bad(key, "a string", n);
    }

    List<String> stringList(String key) {
        List<String> out = new ArrayList<>();
        if (!has(key)) {
            return out;
        }
        JsonNode n = root.get(key);
        if (!n.isArray()) {
            throw bad(key, "a list of strings", n);
        }
        for (JsonNode e : n) {
            if (!e.isString()) {
                throw bad(key, "a list of strings", n);
            }
            out.add(e.stringValue());
        }
        return out;
    }

    /** An id or a list of ids (as {@code eos_token_id} may be either). */
    List<Integer> intOrIntList(String key) {
        List<Integer> out = new ArrayList<>();
        if (!has(key)) {
            return out;
        }
        JsonNode n = root.get(key);
        if (n.isIntegralNumber()) {
            out.add(n.intValue());
            return out;
        }
        if (n.isArray()) {
            for (JsonNode e : n) {
                if (!e.isIntegralNumber()) {
                    throw bad(key, "an integer or a list of integers", n);
                }
                out.add(e.intValue());
            }
            return out;
        }
        throw bad(key, "an integer or a list of integers", n);
    }

    JsonFields object(String key) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isObject()) {
            throw bad(key, "an object or null", n);
        }
        return new JsonFields(source + " " + key, n);
    }

    /** Runs a parser so that every ConfigException it raises starts with this file's name. */
    <T> T namingSource(java.util.function.Function<JsonFields, T> parser) {
        try {
            return parser.apply(this);
        } catch (ConfigException e) {
            if (e.getMessage().startsWith(source)) {
                throw e;
            }
            throw new ConfigException(source + ": " + e.getMessage(), e);
        }
    }

    ConfigException bad(String key, String expected, JsonNode actual) {
        return new ConfigException(source + ": " + key + " must be " + expected + ", got " + actual);
    }
}
