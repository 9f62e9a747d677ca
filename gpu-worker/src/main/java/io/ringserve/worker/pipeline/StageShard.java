package io.ringserve.worker.pipeline;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.protocol.v1.SequenceSampling;
import io.ringserve.protocol.v1.StageEntry;
import io.ringserve.protocol.v1.StageSample;
import io.ringserve.protocol.v1.StageStep;
import io.ringserve.worker.engine.Logprobs;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.engine.StepRunner.Sampling;
import io.ringserve.worker.reference.KvCache;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.reference.PagedKvCache;
import io.ringserve.worker.reference.ReferenceForward;
import io.ringserve.worker.reference.ReferenceForward.Span;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The layers of a stage after the head and what it keeps for one session: KV storage for its layers (block
 * ids as the head allocates them), each sequence's block table, and on the last stage each sequence's
 * sampler and, when penalties need it, its token history. Used only from the stage's compute thread.
 *
 * <p>Legend: T = tokens of a micro-batch, D = hidden, V = vocab.
 */
final class StageShard {
    private final ReferenceForward forward;
    private final ModelConfig config;
    private final LayerRange range;
    private PagedKvCache kv;
    private int blockSize;
    private int blocks;
    private final Map<Long, int[]> tables = new HashMap<>();
    private final Map<Long, SequenceSampler> samplers = new HashMap<>();

    /** A sequence's sampling state on the last stage; {@code history} holds only what penalties need. */
    private static final class SequenceSampler {
        final Sampler sampler;
        final int promptLength;
        final int topLogprobs;
        int[] history = new int[0];
        int historyLength;

        SequenceSampler(Sampler sampler, int promptLength, int topLogprobs) {
            this.sampler = sampler;
            this.promptLength = promptLength;
            this.topLogprobs = topLogprobs;
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

    StageShard(ReferenceForward forward) {
        if (forward.layerRange().isFirst()) {
            throw new IllegalArgumentException("layers " + forward.layerRange() + " include layer 0: that worker is the pipeline head, not a stage");
        }
        this.forward = forward;
        this.config = forward.config();
        this.range = forward.layerRange();
    }

    LayerRange layers() {
        return range;
    }

    ModelConfig config() {
        return config;
    }

    /** KV bytes this stage needs for {@code blocks} blocks of {@code blockSize} positions of its layers. */
    long kvBytes(int blockSize, int blocks) {
        return PagedKvCache.bytesPerBlock(config, range, blockSize) * blocks;
    }

    int maxKvBlocks(int blockSize) {
        return PagedKvCache.maxBlocks(config, blockSize);
    }

    /** A new session: forgets every sequence; KV storage of the same shape is reused (every position is written before it is read). */
    void startSession(int blockSize, int blocks) {
        tables.clear();
        samplers.clear();
        if (kv == null || this.blockSize != blockSize || this.blocks != blocks) {
            kv = null; // let the old storage go before the new one is allocated
            kv = new PagedKvCache(config, range, blockSize, blocks);
            this.blockSize = blockSize;
            this.blocks = blocks;
        }
    }

    /** Runs one micro-batch through this stage's layers (and on the last stage the lm_head and sampling). */
    Outcome run(StageStep step) {
        if (kv == null) {
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
        List<Span> spans = new ArrayList<>(step.getEntriesCount());
        List<SequenceSampler> sampling = new ArrayList<>();
        for (StageEntry e : step.getEntriesList()) {
            spans.add(new Span(e.getTokens(), e.getStart(), kv.view(updateTable(e)), false));
            if (range.isLast() && e.getSample()) {
                sampling.add(samplerOf(e));
            }
        }
        forward.layers(x, spans, null);
        if (!range.isLast()) {
            return new Outcome(x, null);
        }
        float[][] logits = forward.logits(x, spans); // per entry (1, V)
        List<StageSample> samples = new ArrayList<>(sampling.size());
        int k = 0;
        for (int i = 0; i < spans.size(); i++) {
            if (step.getEntries(i).getSample()) {
                SequenceSampler s = sampling.get(k++);
                Sampling state = new Sampling(s.sampler, s.history, s.historyLength, s.promptLength, s.topLogprobs);
                samples.add(StageWire.sample(Logprobs.sample(state, logits[i])));
            }
        }
        return new Outcome(null, samples);
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
            s = new SequenceSampler(sampler, p.getPromptLength(), p.getTopLogprobs());
            samplers.put(e.getSequenceId(), s);
        }
        if (s == null) {
            throw new IllegalStateException("sequence " + e.getSequenceId() + " samples, but its sampling state was never sent");
        }
        s.append(e.getHistoryList());
        return s;
    }

    /** A one-token pass through this stage's layers (and lm_head) with a private cache: finite outputs. */
    boolean selfTest() {
        KvCache cache = new KvCache(config, range, 1);
        List<Span> one = List.of(new Span(1, 0, cache, false));
        float[] x = new float[config.hiddenSize()]; // (1, D)
        Arrays.fill(x, 0.01f);
        forward.layers(x, one, null);
        float[] out = range.isLast() ? forward.logits(x, one)[0] : x;
        for (float v : out) {
            if (!Float.isFinite(v)) {
                return false;
            }
        }
        return true;
    }
}
