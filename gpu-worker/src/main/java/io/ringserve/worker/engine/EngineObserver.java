package io.ringserve.worker.engine;

import java.time.Duration;

/** Engine-wide measurements for metrics; called on the engine thread, must be cheap. */
public interface EngineObserver {
    EngineObserver NONE = new EngineObserver() {
    };

    default void firstToken(Duration timeToFirstToken) {
    }

    default void interTokenLatency(Duration sinceLastToken) {
    }

    default void tokens(int promptTokensComputed, int generatedTokens) {
    }

    default void finished(EngineEvent.FinishReason reason, int promptTokens, int completionTokens) {
    }

    default void failed(EngineEvent.ErrorCode code) {
    }

    default void preempted() {
    }

    default void step(int sequences, int tokens, Duration duration) {
    }
}
