package io.ringserve.worker.engine;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.reference.KvCache;
import io.ringserve.worker.reference.PagedKvCache;
import io.ringserve.worker.reference.ReferenceForward;
import java.util.ArrayList;
import java.util.List;

/** The float32 CPU reference as a {@link StepRunner}: K/V in a {@link PagedKvCache}, sampling on the host. */
public final class ReferenceRunner implements StepRunner {
    private final ReferenceForward model;
    private final ModelConfig config;
    private PagedKvCache kv;

    public ReferenceRunner(ReferenceForward model) {
        if (!model.layerRange().isAll()) {
            throw new IllegalArgumentException("a whole-model runner needs every layer; this forward holds " + model.layerRange());
        }
        this.model = model;
        this.config = model.config();
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public long kvBytesPerBlock(int blockSize) {
        return PagedKvCache.bytesPerBlock(config, blockSize);
    }

    @Override
    public int maxKvBlocks(int blockSize) {
        return PagedKvCache.maxBlocks(config, blockSize);
    }

    @Override
    public void allocateKv(int blockSize, int blocks) {
        if (kv != null) {
            throw new IllegalStateException("KV storage is already allocated");
        }
        kv = new PagedKvCache(config, blockSize, blocks);
    }

    @Override
    public Sampled[] step(List<StepEntry> batch) {
        if (kv == null) {
            throw new IllegalStateException("allocateKv was not called");
        }
        List<ReferenceForward.Chunk> chunks = new ArrayList<>(batch.size());
        for (StepEntry e : batch) {
            chunks.add(new ReferenceForward.Chunk(e.tokens(), e.start(), kv.view(e.blockTable()), false));
        }
        float[][] logits = model.forward(chunks, null); // per entry (1, V)
        Sampled[] out = new Sampled[batch.size()];
        for (int i = 0; i < out.length; i++) {
            Sampling s = batch.get(i).sampling();
            if (s != null) {
                out[i] = Logprobs.sample(s, logits[i]);
            }
        }
        return out;
    }

    @Override
    public boolean selfTest() {
        float[] logits = model.forward(new KvCache(config, 1), new int[] {0}, false, null);
        for (float v : logits) {
            if (!Float.isFinite(v)) {
                return false;
            }
        }
        return true;
    }
}
