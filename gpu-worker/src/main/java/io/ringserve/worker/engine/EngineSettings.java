package io.ringserve.worker.engine;

/**
 * Scheduler limits.
 *
 * @param maxRunning     sequences in one step at most
 * @param maxWaiting     queued requests at most; more are refused with resource_exhausted
 * @param maxBatchTokens tokens per step (decode tokens first, then prefill chunks)
 * @param kvBlockSize    positions per KV block
 * @param kvBudgetBytes  memory for the KV cache
 */
public record EngineSettings(int maxRunning, int maxWaiting, int maxBatchTokens, int kvBlockSize, long kvBudgetBytes) {
    public EngineSettings {
        if (maxRunning < 1) {
            throw new IllegalArgumentException("max-running (" + maxRunning + ") must be >= 1");
        }
        if (maxWaiting < 0) {
            throw new IllegalArgumentException("max-waiting (" + maxWaiting + ") must be >= 0");
        }
        if (maxBatchTokens < 1) {
            throw new IllegalArgumentException("max-batch-tokens (" + maxBatchTokens + ") must be >= 1");
        }
        if (kvBlockSize < 1 || kvBlockSize > 1024) {
            throw new IllegalArgumentException("kv-block-size (" + kvBlockSize + ") must be in [1, 1024]");
        }
        if (kvBudgetBytes < 1) {
            throw new IllegalArgumentException("kv-cache-bytes (" + kvBudgetBytes + ") must be > 0");
        }
    }

    public static EngineSettings defaults() {
        return new EngineSettings(64, 1024, 512, 16, 512L << 20);
    }
}
