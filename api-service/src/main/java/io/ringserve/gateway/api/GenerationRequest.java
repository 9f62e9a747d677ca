package io.ringserve.gateway.api;

import java.util.List;

/**
 * A validated request, independent of the endpoint it came through.
 *
 * @param kind             which endpoint, deciding the response shape
 * @param promptTokenIds   prompt ids, chat template applied
 * @param sampling         how tokens are chosen
 * @param maxTokens        most completion tokens, at least 1
 * @param stop             stop strings, matched on the output text (the answer, after any reasoning)
 * @param stream           whether the response is Server-Sent Events
 * @param includeUsage     whether a stream ends with a usage chunk
 * @param logprobs         whether log probabilities are returned
 * @param topLogprobs      alternatives per token, 0..20
 * @param splitReasoning   whether text before {@code </think>} is reasoning
 */
public record GenerationRequest(Kind kind, int[] promptTokenIds, Sampling sampling, int maxTokens, List<String> stop,
                                boolean stream, boolean includeUsage, boolean logprobs, int topLogprobs,
                                boolean splitReasoning) {
    public GenerationRequest {
        stop = List.copyOf(stop);
    }

    /** The endpoint a request came through. */
    public enum Kind { CHAT, COMPLETION }

    /**
     * Sampling parameters in the worker protocol's conventions (0 = off where the protocol says so).
     *
     * @param temperature        ≥ 0, 0 greedy
     * @param topP               (0, 1]
     * @param topK               0 = all
     * @param minP               [0, 1]
     * @param presencePenalty    [-2, 2]
     * @param frequencyPenalty   [-2, 2]
     * @param repetitionPenalty  &gt; 0, 1 off
     * @param seed               null for random
     */
    public record Sampling(double temperature, double topP, int topK, double minP, double presencePenalty,
                           double frequencyPenalty, double repetitionPenalty, Long seed) {
    }
}
