package io.ringserve.gateway.api;

/** Text-level output of a generation, after detokenizing, the reasoning split and stop strings. */
public sealed interface OutputEvent {
    /** Reasoning text (before {@code </think>}). */
    record Reasoning(String text) implements OutputEvent {
    }

    /** Answer text. */
    record Content(String text) implements OutputEvent {
    }

    /**
     * Log probabilities of tokens just received, as OpenAI {@code logprobs.content} entries.
     *
     * @param entries one map per token: token, logprob, bytes, top_logprobs
     */
    record Logprobs(java.util.List<java.util.Map<String, Object>> entries) implements OutputEvent {
    }

    /**
     * The end.
     *
     * @param finishReason     "stop" or "length"
     * @param promptTokens     prompt tokens
     * @param completionTokens tokens generated
     */
    record Done(String finishReason, int promptTokens, int completionTokens) implements OutputEvent {
    }
}
