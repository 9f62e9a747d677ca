package io.ringserve.model.tokenizer;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The parts of a Hugging Face {@code tokenizer_config.json} a server needs. Absent keys give null
 * (strings, {@link #modelMaxLength}) or false.
 *
 * @param chatTemplate              the Jinja chat template; when the file has a list of named templates,
 *                                  the one named "default" (null if none is)
 * @param bosToken                  beginning-of-sequence token text
 * @param eosToken                  end-of-sequence token text
 * @param padToken                  padding token text
 * @param addBosToken               whether encoding for the model should prepend {@link #bosToken}
 * @param addEosToken               whether encoding for the model should append {@link #eosToken}
 * @param unkToken                  unknown token text
 * @param clsToken                  classifier token text
 * @param modelMaxLength            maximum sequence length; null if absent or the "unbounded" sentinel
 * @param tokenizerClass            the transformers tokenizer class name
 * @param cleanUpTokenizationSpaces whether transformers tidies spaces around punctuation after decoding
 * @param chatTemplates             every named template (just "default" when the file has a single string)
 */
public record TokenizerConfig(String chatTemplate, String bosToken, String eosToken, String padToken,
                              boolean addBosToken, boolean addEosToken, String unkToken, String clsToken,
                              Long modelMaxLength, String tokenizerClass, boolean cleanUpTokenizationSpaces,
                              Map<String, String> chatTemplates) {

    public TokenizerConfig {
        chatTemplates = chatTemplates == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(chatTemplates));
    }

    /**
     * Reads a {@code tokenizer_config.json} file.
     *
     * @throws java.io.UncheckedIOException if the file is missing or unreadable
     * @throws IllegalArgumentException     if it is not valid JSON or a key has the wrong shape; the
     *                                      message names the file and the key
     */
    public static TokenizerConfig load(Path tokenizerConfigJson) {
        JsonCursor root = JsonCursor.parse(tokenizerConfigJson,
                JsonCursor.readBytes(tokenizerConfigJson, "Tokenizer config file"));
        Map<String, String> templates = chatTemplates(root.optional("chat_template"));
        return new TokenizerConfig(templates.get("default"), tokenText(root, "bos_token"), tokenText(root, "eos_token"),
                tokenText(root, "pad_token"), root.bool("add_bos_token", false), root.bool("add_eos_token", false),
                tokenText(root, "unk_token"), tokenText(root, "cls_token"), maxLength(root.optional("model_max_length")),
                root.optionalString("tokenizer_class"), root.bool("clean_up_tokenization_spaces", false), templates);
    }

    /** A string, or a list of {"name": ..., "template": ...} objects. */
    private static Map<String, String> chatTemplates(JsonCursor json) {
        Map<String, String> out = new LinkedHashMap<>();
        if (json == null) {
            return out;
        }
        if (json.isString()) {
            out.put("default", json.string());
            return out;
        }
        if (!json.isArray()) {
            throw json.error("expected a string or a list of {\"name\", \"template\"} objects");
        }
        for (JsonCursor entry : json.elements()) {
            out.put(entry.required("name").string(), entry.required("template").string());
        }
        return out;
    }

    /** Special tokens are written either as plain strings or as AddedToken objects with a "content" key. */
    private static String tokenText(JsonCursor root, String key) {
        JsonCursor json = root.optional(key);
        if (json == null) {
            return null;
        }
        if (json.isObject()) {
            return json.required("content").string();
        }
        if (!json.isString()) {
            throw json.error("expected a string or an object with \"content\"");
        }
        return json.string();
    }

    /** transformers writes 1e30 (as a huge integer or float) for "no limit". */
    private static Long maxLength(JsonCursor json) {
        if (json == null) {
            return null;
        }
        if (!json.node().isNumber()) {
            throw json.error("expected a number but found " + json.node());
        }
        if (!json.node().canConvertToExactIntegral() || !json.node().canConvertToLong()
                || json.node().longValue() >= 1_000_000_000_000_000L) {
            return null;
        }
        return json.node().longValue();
    }
}
