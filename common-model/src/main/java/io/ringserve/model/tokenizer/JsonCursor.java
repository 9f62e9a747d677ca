package io.ringserve.model.tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import tools.jackson.core.JacksonException;
import tools.jackson.core.JsonParser;
import tools.jackson.core.TokenStreamContext;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A position in a parsed JSON file that remembers the file and the key path leading to it, so every
 * complaint about malformed input can name both (e.g. {@code model.merges[12]}).
 */
record JsonCursor(Path file, String path, JsonNode node) {

    private static final JsonMapper MAPPER = JsonMapper.builder().build();

    /** Reads the whole file; a missing or unreadable file is reported with its path. */
    static byte[] readBytes(Path file, String what) {
        try {
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new UncheckedIOException(what + " not found: " + file, e);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read " + what + " " + file + ": " + e.getMessage(), e);
        }
    }

    /** Parses {@code bytes} (the content of {@code file}) and returns a cursor on the root object. */
    static JsonCursor parse(Path file, byte[] bytes) {
        JsonNode root;
        try (JsonParser parser = MAPPER.createParser(bytes)) {
            try {
                root = MAPPER.readTree(parser);
                if (root != null && parser.nextToken() != null) {
                    throw new IllegalArgumentException("Malformed JSON in " + file + ": unexpected content after "
                            + "the top-level value at " + parser.currentLocation().offsetDescription());
                }
            } catch (JacksonException e) {
                // the parser's context tells which key it was reading when the input went wrong
                String key = keyPath(parser.streamReadContext());
                throw new IllegalArgumentException("Malformed JSON in " + file
                        + (key.isEmpty() ? "" : " at key '" + key + "'") + ": " + e.getOriginalMessage()
                        + (e.getLocation() == null ? "" : " (line " + e.getLocation().getLineNr()
                        + ", column " + e.getLocation().getColumnNr() + ")"), e);
            }
        }
        if (root == null || root.isMissingNode()) {
            throw new IllegalArgumentException("Malformed JSON in " + file + ": the file is empty");
        }
        JsonCursor cursor = new JsonCursor(file, "", root);
        if (!root.isObject()) {
            throw cursor.error("expected a JSON object at the top level");
        }
        return cursor;
    }

    /** Dotted key path (e.g. {@code model.merges[3]}) of a parser position. */
    private static String keyPath(TokenStreamContext context) {
        StringBuilder path = new StringBuilder();
        for (TokenStreamContext c = context; c != null && !c.inRoot(); c = c.getParent()) {
            if (c.inArray()) {
                path.insert(0, "[" + Math.max(c.getCurrentIndex(), 0) + "]");
            } else if (c.currentName() != null) {
                path.insert(0, (c.getParent() != null && !c.getParent().inRoot() ? "." : "") + c.currentName());
            }
        }
        return path.toString();
    }

    /** An exception naming the file and this cursor's key. */
    IllegalArgumentException error(String problem) {
        return new IllegalArgumentException("Invalid " + file + " at key '" + (path.isEmpty() ? "<root>" : path)
                + "': " + problem);
    }

    private String childPath(String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    /** The member {@code key}; fails if it is absent or JSON null. */
    JsonCursor required(String key) {
        JsonCursor child = optional(key);
        if (child == null) {
            throw new JsonCursor(file, childPath(key), null).error("missing required key");
        }
        return child;
    }

    /** The member {@code key}, or null if it is absent or JSON null. */
    JsonCursor optional(String key) {
        if (!node.isObject()) {
            throw error("expected an object");
        }
        JsonNode child = node.get(key);
        return child == null || child.isNull() ? null : new JsonCursor(file, childPath(key), child);
    }

    /** This value as a string. */
    String string() {
        if (!node.isString()) {
            throw error("expected a string but found " + node.getNodeType());
        }
        return node.stringValue();
    }

    /** This value as a non-negative int. */
    int nonNegativeInt() {
        if (!node.isIntegralNumber() || !node.canConvertToInt() || node.intValue() < 0) {
            throw error("expected a non-negative integer but found " + node);
        }
        return node.intValue();
    }

    /** This value as a boolean. */
    boolean bool() {
        if (!node.isBoolean()) {
            throw error("expected true or false but found " + node);
        }
        return node.booleanValue();
    }

    /** The string member {@code key}, or null if absent. */
    String optionalString(String key) {
        JsonCursor child = optional(key);
        return child == null ? null : child.string();
    }

    /** The boolean member {@code key}, or {@code fallback} if absent. */
    boolean bool(String key, boolean fallback) {
        JsonCursor child = optional(key);
        return child == null ? fallback : child.bool();
    }

    boolean isObject() {
        return node.isObject();
    }

    boolean isArray() {
        return node.isArray();
    }

    boolean isString() {
        return node.isString();
    }

    /** The elements of this array. */
    List<JsonCursor> elements() {
        if (!node.isArray()) {
            throw error("expected an array but found " + node.getNodeType());
        }
        List<JsonCursor> out = new ArrayList<>(node.size());
        for (int i = 0; i < node.size(); i++) {
            out.add(new JsonCursor(file, path + "[" + i + "]", node.get(i)));
        }
        return out;
    }
}
