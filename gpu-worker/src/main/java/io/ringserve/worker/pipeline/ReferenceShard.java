package io.ringserve.worker.pipeline;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.engine.Logprobs;
import io.ringserve.worker.engine.ShardRunner;
import io.ringserve.worker.engine.StepRunner.Sampled;
import io.ringserve.worker.engine.StepRunner.Sampling;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import io.ringserve.worker.reference.KvCache;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.reference.PagedKvCache;
import io.ringserve.worker.reference.ReferenceForward;
import io.ringserve.worker.reference.ReferenceForward.Chunk;
import io.ringserve.worker.reference.ReferenceForward.Span;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A layer shard on the float32 CPU reference: the same ops, in the same order, as a whole-model
 * {@link io.ringserve.worker.engine.ReferenceRunner} computes for those layers, so a chain of these computes bit for bit
 * what one worker computes. K/V in a {@link PagedKvCache} of the held layers; sampling on the host.
 *
 * <p>Legend: T = tokens of a micro-batch, D = hidden, V = vocab.
 */
public final class ReferenceShard implements ShardRunner {
    private final ReferenceForward forward;
    private final ModelConfig config;
    private final LayerRange range;
    private PagedKvCache kv;
    private int blockSize;
    private int blocks;

    public ReferenceShard(ReferenceForward forward) {
        this.forward = forward;
        this.config = forward.config();
        this.range = forward.layerRange();
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public LayerRange layers() {
        return range;
    }

    @Override
    public long kvBytesPerBlock(int blockSize) {
        return PagedKvCache.bytesPerBlock(config, range, blockSize);
    }

    @Override
    public int maxKvBlocks(int blockSize) {
        return PagedKvCache.maxBlocks(config, blockSize);
    }

    @Override
    public void allocateKv(int blockSize, int blocks) {
        if (kv == null || this.blockSize != blockSize || this.blocks != blocks) {
            kv = null; // let the old storage go before the new one is allocated
            kv = new PagedKvCache(config, range, blockSize, blocks);
            this.blockSize = blockSize;
            this.blocks = blocks;
        }
    }

    @Override
    public Output run(List<StepEntry> batch, float[] hidden) {
        if (kv == null) {
            throw new IllegalStateException("allocateKv was not called");
        }
        int t = ShardRunner.tokens(batch);
        float[] x; // (T, D)
        List<Span> spans = new ArrayList<>(batch.size());
        if (range.isFirst()) {
            if (hidden != null) {
                throw new IllegalArgumentException("the first shard embeds token ids; it takes no hidden states");
            }
            List<Chunk> chunks = new ArrayList<>(batch.size());
            for (StepEntry e : batch) {
                Chunk c = new Chunk(e.tokens(), e.start(), kv.view(e.blockTable()), false);
                chunks.add(c);
                spans.add(c.span());
            }
            x = forward.embed(chunks, null);
        } else {
            if (hidden == null || hidden.length != (long) t * config.hiddenSize()) {
                throw new IllegalArgumentException("layers " + range + " need the (" + t + ", " + config.hiddenSize() + ") hidden states of the previous"
                        + " shard, got " + (hidden == null ? "none" : hidden.length + " values"));
            }
            x = hidden;
            for (StepEntry e : batch) {
                spans.add(new Span(e.tokens().length, e.start(), kv.view(e.blockTable()), false));
            }
        }
        forward.layers(x, spans, null);
        if (!range.isLast()) {
            return new Hidden(x);
        }
        float[][] logits = forward.logits(x, spans); // per entry (1, V)
        Sampled[] out = new Sampled[batch.size()];
        for (int i = 0; i < out.length; i++) {
            Sampling s = batch.get(i).sampling();
            if (s != null) {
                out[i] = Logprobs.sample(s, logits[i]);
            }
        }
        return new Samples(out);
    }

    /** A one-token pass through the held layers (and the lm_head when last) with a private cache: finite outputs. */
    @Override
    public boolean selfTest() {
        KvCache cache = new KvCache(config, range, 1);
        List<Span> one = List.of(new Span(1, 0, cache, false));
        float[] x; // (1, D)
        if (range.isFirst()) {
            x = forward.embed(List.of(new Chunk(new int[] {0}, 0, cache, false)), null);
        } else {
            x = new float[config.hiddenSize()];
            Arrays.fill(x, 0.01f);
        }
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
