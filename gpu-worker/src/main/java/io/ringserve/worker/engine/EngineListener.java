package io.ringserve.worker.engine;

/** Receives one request's events, in order, on the engine thread; must not block. */
@FunctionalInterface
public interface EngineListener {
    void onEvent(EngineEvent event);
}
