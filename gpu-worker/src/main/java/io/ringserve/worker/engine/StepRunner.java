package io.ringserve.worker.engine;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.engine.EngineEvent.TopLogprob;
import java.util.List;

/**
 * What runs the model for an {@link Engine}: one step over a batch of sequence chunks. The engine owns
 * scheduling and the KV block tables ({@link KvBlocks}); a runner owns the KV storage those block ids name
 * and turns each finished row into a sampled token. The CPU reference ({@link ReferenceRunner}), the CUDA
 * backend and a pipeline of layer shards are runners; the engine's behaviour is the same over each.
 *
 * <p>Called only from the engine thread.
 */
public interface StepRunner extends AutoCloseable {

    ModelConfig config();

    /** Longest prompt + generated tokens one sequence may have (YaRN-extended when configured). */
    default int contextLength() {
        return config().contextLength();
    }

    /** Bytes of KV storage one block of {@code blockSize} positions takes in this runner. */
    long kvBytesPerBlock(int blockSize);

    /** Most blocks this runner can store whatever the budget (array or device limits). */
    default int maxKvBlocks(int blockSize) {
        return Integer.MAX_VALUE;
    }

    /**
     * The largest steps to come, told before {@link #allocateKv}: at most {@code maxBatchTokens} tokens over at most
     * {@code maxSequences} sequences (the engine's max-batch-tokens and max-running), so that a runner whose step
     * buffers share memory with the KV cache (the CUDA runner) can keep room for them and refuse a KV budget that
     * would not leave it. Without this call a runner assumes nothing.
     */
    default void reserveSteps(int maxBatchTokens, int maxSequences) {
    }

    /** Allocates the KV storage for block ids {@code 0 .. blocks-1}; called once, before the first step. */
    void allocateKv(int blockSize, int blocks);

    /**
     * Runs one step: every entry's tokens go through the model and their K/V into the blocks of its table.
     *
     * @return per entry, in order, the sampled token when the entry asked for one ({@link StepEntry#sampling}
     *         not null), else null
     */
    Sampled[] step(List<StepEntry> batch);

    /**
     * Prepares for steps of up to {@code maxSequences} sequences (the engine's max-running) once the KV storage is
     * allocated, before the first step: e.g. the CUDA runner captures its decode graphs here. Must not fail the
     * runner: whatever cannot be prepared is done on first use instead.
     */
    default void warmUp(int maxSequences) {
    }

    /** A sequence left (finished, cancelled or failed): drop whatever the runner keeps for it. */
    default void release(long sequenceId) {
    }

    /**
     * Why this runner cannot run a step now (a pipeline stage is missing), or null when it can. The engine
     * refuses new requests with UNAVAILABLE while this is not null.
     */
    default String unavailable() {
        return null;
    }

    /**
     * Steps this runner can have in flight at once: 1 (the default) means {@link #step} runs a step to its end and the
     * engine waits for each. A pipeline head with steps-in-flight above 1 answers more: the engine then {@link #submit}s steps of
     * disjoint sequences while earlier ones are still in the chain, so the stages work on different steps at once.
     */
    default int inFlight() {
        return 1;
    }

    /**
     * Starts a step and returns once this runner can take the next one (a pipeline head: once its own layers ran and
     * the step is on its way down the chain); the future completes with what {@link #step} would return, or with
     * {@link UnavailableException} when the runner lost its state. Steps complete in the order they were submitted.
     * Only called while {@link #inFlight()} is more than 1.
     */
    default java.util.concurrent.CompletableFuture<Sampled[]> submit(List<StepEntry> batch) {
        return java.util.concurrent.CompletableFuture.completedFuture(step(batch));
    }

    /** One tiny forward outside the engine's state proving the weights and kernels compute finite logits. */
    boolean selfTest();

    @Override
    default void close() {
    }

    /**
     * Thrown by {@link #step} when the runner lost state it needs (a pipeline stage died or stalled and took
     * the KV of every running sequence with it): the engine fails every request in flight with UNAVAILABLE,
     * so the gateway retries or replays them elsewhere.
     */
    class UnavailableException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public UnavailableException(String message) {
            super(message);
        }
    }

    /**
     * One sequence's share of a step.
     *
     * @param sequenceId unique per engine, stable for the sequence's life (also across preemption)
     * @param tokens     the new tokens (T_i)
     * @param start      position of {@code tokens[0]}
     * @param blockTable the sequence's KV block ids in position order, covering {@code start + T_i} positions
     * @param sampling   how to pick the next token after the last one, or null while prefill goes on
     */
    record StepEntry(long sequenceId, int[] tokens, int start, int[] blockTable, Sampling sampling) {
    }

    /**
     * What sampling the next token needs.
     *
     * @param sampler       the sequence's sampler (keeps its random state across steps)
     * @param history       prompt then generated tokens; read-only during the step
     * @param historyLength valid entries of {@code history} (= start + T_i)
     * @param promptLength  how many of them are prompt (penalties treat replayed output as output)
     * @param topLogprobs   -1: no logprobs; 0: the chosen token's; n: also the n most likely
     */
    record Sampling(Sampler sampler, int[] history, int historyLength, int promptLength, int topLogprobs) {
    }

    /**
     * A sampled token.
     *
     * @param logprob its log-probability under the unmodified logits, or NaN when not asked for
     * @param top     the most likely tokens, or null when not asked for
     */
    record Sampled(int token, float logprob, List<TopLogprob> top) {
    }
}
