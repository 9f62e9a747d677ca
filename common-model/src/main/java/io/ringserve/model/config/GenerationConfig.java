package io.ringserve.model.config;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code generation_config.json}: the ids generation stops on and the model's suggested sampling defaults.
 *
 * @param bosTokenId   may be null
 * @param eosTokenIds  every id that ends generation ({@code eos_token_id} may be an int or a list)
 * @param padTokenId   may be null
 * @param temperature  suggested temperature, or null
 * @param topP         suggested top_p, or null
 * @param topK         suggested top_k, or null
 */
public record GenerationConfig(Integer bosTokenId, List<Integer> eosTokenIds, Integer padTokenId,
                               Double temperature, Double topP, Integer topK) {
    public GenerationConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    public static GenerationConfig empty() {
        return new GenerationConfig(null, List.of(), null, null, null, null);
    }

    /** Reads {@code dir/generation_config.json}; a missing file means no extra settings. */
    public static GenerationConfig load(Path dir) {
        Path file = dir.resolve("generation_config.json");
        if (!Files.exists(file)) {
            return empty();
        }
        JsonFields f = JsonFields.read(file);
        return new GenerationConfig(
                f.intOrNull("bos_token_id"),
                f.intOrIntList("eos_token_id"),
                f.intOrNull("pad_token_id"),
                f.doubleOrNull("temperature"),
                f.doubleOrNull("top_p"),
                f.intOrNull("top_k"));
    }
}
