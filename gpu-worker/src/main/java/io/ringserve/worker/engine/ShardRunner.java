package io.ringserve.worker.engine;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import io.ringserve.worker.reference.LayerRange;
import java.util.List;

/**
 * The layers one worker of a pipeline holds ({@link #layers()}), run one micro-batch at a time: what the pipeline
 * head and every stage behind it compute, on the CPU reference ({@code ReferenceShard}) or the CUDA backend
 * ({@code CudaRunner}). The first shard embeds the entries' token ids; every other shard takes the residual stream
 * the previous shard's layers produced. The last shard applies the final norm and the lm_head and samples; every
 * other shard hands its residual stream on. A shard owns the KV storage of its layers, addressed by the head's
 * block ids.
 *
 * <p>Called from one thread at a time. Legend: T = tokens of a micro-batch, D = hidden.
 */
public interface ShardRunner extends AutoCloseable {

    ModelConfig config();

    /** The decoder layers held (with the embeddings when first, the final norm and the lm_head when last). */
    LayerRange layers();

    /** Bytes of KV storage one block of {@code blockSize} positions of the held layers takes. */
    long kvBytesPerBlock(int blockSize);

    /** Most blocks this shard can store whatever the budget (array or device limits). */
    int maxKvBlocks(int blockSize);

    /** The largest micro-batches to come (see {@link StepRunner#reserveSteps}); before {@link #allocateKv}. */
    default void reserveSteps(int maxBatchTokens, int maxSequences) {
    }

    /**
     * Makes KV storage for block ids {@code 0 .. blocks-1} ready. Called before the first step and again for each
     * new pipeline session: storage of the same shape is kept (every position is written before a step reads it),
     * storage of another shape is replaced.
     *
     * @throws IllegalArgumentException when the storage does not fit (the message says why)
     */
    void allocateKv(int blockSize, int blocks);

    /** Prepares for micro-batches of up to {@code maxSequences} sequences once the KV storage exists; must not fail. */
    default void warmUp(int maxSequences) {
    }

    /**
     * Runs one micro-batch through the layers held. Each entry's tokens are read on the first shard only (elsewhere
     * only their count), its sampling on the last shard only.
     *
     * @param hidden (T, D) fp32, the residual stream entering {@code layers().start()}; null on the first shard
     * @return the residual stream leaving the last layer held, or on the last shard the sampled tokens
     */
    Output run(List<StepEntry> batch, float[] hidden);

    /** One tiny pass through the held layers outside every session, proving they compute finite values. */
    boolean selfTest();

    @Override
    default void close() {
    }

    /** What {@link #run} produced. */
    sealed interface Output permits Hidden, Samples {
    }

    /** @param x (T, D) fp32, the residual stream for the next shard */
    record Hidden(float[] x) implements Output {
    }

    /** @param sampled per entry, in order: its token when it has sampling, else null */
    record Samples(Sampled[] sampled) implements Output {
    }

    /** Total tokens of a micro-batch (T); every entry has at least one. */
    static int tokens(List<StepEntry> batch) {
        int t = 0;
        for (StepEntry e : batch) {
            if (e.tokens().length == 0) {
                throw new IllegalArgumentException("sequence " + e.sequenceId() + ": a step entry has no tokens");
            }
            t += e.tokens().length;
        }
        return t;
    }
}
