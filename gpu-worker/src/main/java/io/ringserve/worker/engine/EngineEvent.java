package io.ringserve.worker.engine;

import java.time.Duration;
import java.util.List;

/** What the engine reports for a request: tokens, then exactly one {@link Finished} or {@link Failed}. */
public sealed interface EngineEvent permits EngineEvent.Tokens, EngineEvent.Finished, EngineEvent.Failed {

    /** A candidate token with its log-probability. */
    record TopLogprob(int tokenId, float logprob) {
    }

    /**
     * Tokens sampled in one step.
     *
     * @param logprobs null unless requested; else one entry per id
     * @param top      null unless top logprobs were requested; else one list per id
     */
    record Tokens(int[] ids, float[] logprobs, List<List<TopLogprob>> top) implements EngineEvent {
    }

    record Usage(int promptTokens, int completionTokens, int cachedTokens) {
    }

    /**
     * @param queueTime        from submission to the first step that ran it
     * @param timeToFirstToken from submission to the first sampled token (zero if none)
     */
    record Timings(Duration queueTime, Duration timeToFirstToken, Duration total) {
    }

    record Finished(FinishReason reason, Usage usage, Timings timings) implements EngineEvent {
    }

    /** @param param the request field at fault, or null */
    record Failed(ErrorCode code, String message, String param) implements EngineEvent {
    }

    enum FinishReason { EOS, STOP_TOKEN, LENGTH, CANCELLED }

    enum ErrorCode { INVALID_REQUEST, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE }
}
