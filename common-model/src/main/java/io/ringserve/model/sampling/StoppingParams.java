package io.ringserve.model.sampling;

import java.util.Set;

/**
 * When generation ends.
 *
 * @param maxNewTokens  at most this many generated tokens (≥ 1)
 * @param stopTokenIds  ids that end generation (the model's EOS ids plus any the caller adds); the stop
 *                      token itself is part of the output
 * @param ignoreEos     true: the model's EOS ids do not end generation (stop token ids and the limit still do)
 */
public record StoppingParams(int maxNewTokens, Set<Integer> stopTokenIds, boolean ignoreEos) {
    public StoppingParams {
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("max_tokens (" + maxNewTokens + ") must be >= 1");
        }
        stopTokenIds = Set.copyOf(stopTokenIds);
    }
}
