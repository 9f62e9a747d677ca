package io.ringserve.worker.pipeline;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.protocol.v1.SequenceSampling;
import io.ringserve.protocol.v1.StageEntry;
import io.ringserve.protocol.v1.StageSample;
import io.ringserve.protocol.v1.StageStep;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.engine.ShardRunner;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.engine.StepRunner.Sampling;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import io.ringserve.worker.reference.LayerRange;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The layers of a stage after the head ({@link ShardRunner}: the CPU reference or the CUDA backend) and what it
 * keeps for one session: each sequence's block table (the KV storage of its layers, addressed by the block ids the
 * head allocates, is the shard's), and on the last stage each sequence's sampler and, when penalties need it, its
 * token history. Used only from the stage's compute thread.
 *
 * <p>Legend: T = tokens of a micro-batch, D = hidden, V = vocab.
 */
final class StageShard {
    private final ShardRunner shard;
    private final ModelConfig config;
    private final LayerRange range;
    private boolean allocated;
    private int blocks;
    private final Map<Long, int[]> tables = new HashMap<>();
    private final Map<Long, SequenceSampler> samplers = new HashMap<>();

    /**
     * A sequence's sampling state on the last stage; {@code history} holds only what penalties need (it stays empty
     * without them), {@code drawn} counts the output tokens before the next one (a device sampler's draw index).
     */
    private static final class SequenceSampler {
        final Sampler sampler;
        final int promptLength;
        final int topLogprobs;
        int[] history = new int[0];
        int historyLength;
        int drawn;

        SequenceSampler(Sampler sampler, int promptLength, int topLogprobs, int drawn) {
            this.sampler = sampler;
            this.promptLength = promptLength;
            this.topLogprobs = topLogprobs;
            this.drawn = drawn;
        }

        /**
         * The sampling of the next token: history and its length as the head's engine has them when penalties need
         * it, else no history and the length that places the draw (prompt + output so far).
         */
        Sampling next() {
            boolean full = sampler.params().hasPenalties();
            return new Sampling(sampler, history, full ? historyLength : promptLength + drawn, promptLength, topLogprobs);
        }

        void append(List<Integer> tokens) {
            if (historyLength + tokens.size() > history.length) {
                history = Arrays.copyOf(history, Math.max(history.length * 2, historyLength + tokens.size()));
            }
            for (int t : tokens) {
                history[historyLength++] = t;
            }
        }
    }

    /**
     * What one step produced.
     *
     * @param hidden  (T, D) the residual stream for the next stage; null on the last stage
     * @param samples one per sampling entry, in entry order; null unless on the last stage
     */
    record Outcome(float[] hidden, List<StageSample> samples) {
    }

    StageShard(ShardRunner shard) {
        if (shard.layers().isFirst()) {
            throw new IllegalArgumentException("layers " + shard.layers() + " include layer 0: that worker is the pipeline head, not a stage");
        }
        this.shard = shard;
        this.config = shard.config();
        this.range = shard.layers();
    }

    LayerRange layers() {
        return range;
    }

    ModelConfig config() {
        return config;
    }

    /** KV bytes this stage needs for {@code blocks} blocks of {@code blockSize} positions of its layers. */
    long kvBytes(int blockSize, int blocks) {
        return shard.kvBytesPerBlock(blockSize) * blocks;
    }

    int maxKvBlocks(int blockSize) {
        return shard.maxKvBlocks(blockSize);
    }

    /**
     * A new session: forgets every sequence; KV storage of the same shape is reused (every position is written before it
     * is read). {@code maxBatchTokens} and {@code maxSequences} (0: not said) size the step buffers of a CUDA shard.
     *
     * @throws IllegalArgumentException when the KV storage does not fit this stage (the message says why)
     */
    void startSession(int blockSize, int blocks, int maxBatchTokens, int maxSequences) {
        tables.clear();
        samplers.clear();
        allocated = false;
        if (maxBatchTokens > 0) {
            shard.reserveSteps(maxBatchTokens, maxSequences > 0 ? maxSequences : Math.min(maxBatchTokens, 256));
        }
        shard.allocateKv(blockSize, blocks);
        this.blocks = blocks;
        allocated = true;
        if (maxSequences > 0) {
            shard.warmUp(maxSequences);
        }
    }

    /** Runs one micro-batch through this stage's layers (and on the last stage the lm_head and sampling). */
    Outcome run(StageStep step) {
        if (!allocated) {
            throw new IllegalStateException("a step arrived before the session allocated the KV cache");
        }
        for (long id : step.getReleasedList()) {
            tables.remove(id);
            samplers.remove(id);
        }
        int tokens = 0;
        for (StageEntry e : step.getEntriesList()) {
            tokens += e.getTokens();
        }
        float[] x = StageWire.decode(step.getHidden(), tokens, config.hiddenSize()); // (T, D)
        List<StepEntry> entries = new ArrayList<>(step.getEntriesCount());
        List<SequenceSampler> drawing = new ArrayList<>();
        for (StageEntry e : step.getEntriesList()) {
            Sampling sampling = null;
            if (range.isLast() && e.getSample()) {
                SequenceSampler s = samplerOf(e);
                sampling = s.next();
                drawing.add(s);
            }
            // only the token count matters after the head: the ids stay 0
            entries.add(new StepEntry(e.getSequenceId(), new int[e.getTokens()], e.getStart(), updateTable(e), sampling));
        }
        return switch (shard.run(entries, x)) {
            case ShardRunner.Hidden h -> new Outcome(h.x(), null);
            case ShardRunner.Samples s -> {
                for (SequenceSampler d : drawing) {
                    d.drawn++;
                }
                List<StageSample> samples = new ArrayList<>();
                for (Sampled one : s.sampled()) {
                    if (one != null) {
                        samples.add(StageWire.sample(one));
                    }
                }
                yield new Outcome(null, samples);
            }
        };
    }

    /** Applies the entry's block table update: keep the first block_table_from ids, then the new ones. */
    private int[] updateTable(StageEntry e) {
        int[] old = tables.getOrDefault(e.getSequenceId(), new int[0]);
        int from = e.getBlockTableFrom();
        if (from > old.length) {
            throw new IllegalStateException("sequence " + e.getSequenceId() + ": the head keeps " + from + " block ids of its table, this stage has "
                    + old.length);
        }
        int[] table = Arrays.copyOf(old, from + e.getBlockIdsCount());
        for (int i = 0; i < e.getBlockIdsCount(); i++) {
            int id = e.getBlockIds(i);
            if (id < 0 || id >= blocks) {
                throw new IllegalStateException("sequence " + e.getSequenceId() + ": block id " + Integer.toUnsignedLong(id) + " outside [0, " + blocks + ")");
            }
            table[from + i] = id;
        }
        tables.put(e.getSequenceId(), table);
        return table;
    }

    private SequenceSampler samplerOf(StageEntry e) {
        SequenceSampler s = samplers.get(e.getSequenceId());
        if (e.hasSampling()) {
            SequenceSampling p = e.getSampling();
            Sampler sampler = Sampler.of(StageWire.params(p));
            sampler.skip(p.getSkippedDraws());
            s = new SequenceSampler(sampler, p.getPromptLength(), p.getTopLogprobs(), p.getSkippedDraws());
            samplers.put(e.getSequenceId(), s);
        }
        if (s == null) {
            throw new IllegalStateException("sequence " + e.getSequenceId() + " samples, but its sampling state was never sent");
        }
        s.append(e.getHistoryList());
        return s;
    }

    /** A one-token pass through this stage's layers (and lm_head) outside every session: finite outputs. */
    boolean selfTest() {
        return shard.selfTest();
    }
}
