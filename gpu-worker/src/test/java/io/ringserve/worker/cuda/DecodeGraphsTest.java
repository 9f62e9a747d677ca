package io.ringserve.worker.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.worker.cuda.CudaRunner.InputLayout;
import io.ringserve.worker.cuda.CudaRunner.StepInputs;
import io.ringserve.worker.cuda.ops.Gemv;
import io.ringserve.worker.cuda.ops.MoeExperts;
import io.ringserve.worker.engine.Sampler;
import io.ringserve.worker.engine.StepRunner.Sampling;
import io.ringserve.worker.engine.StepRunner.StepEntry;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The host side of the decode graphs, no GPU needed: bucket choice, padding of a step's inputs, packing them. */
class DecodeGraphsTest {

    /**
     * A graph captured for a bucket replays what an eager step of N ≤ bucket sequences would run only if every
     * kernel choice that depends on the row count lands the same way for N and for its bucket: gemv vs tiled
     * matmul and the fused SiLU·mul (≤ 8), split-K vs one-pass decode attention (≤ 32), CUDA-core vs tensor-core
     * routed experts. Each threshold is a power of two for that reason; this checks every N and cap up to 512.
     */
    @Test
    void everyShapeDependentKernelChoiceAgreesBetweenAStepAndItsBucket() {
        for (ModelConfig c : List.of(BailingMoeV2Config.ringMini20(), BailingMoeConfig.ringLite())) {
            int k = c.numExpertsPerTok();
            int e = c.numExperts();
            for (int limit = 1; limit <= 512; limit++) {
                for (int n = 1; n <= limit; n++) {
                    int b = DecodeGraphs.bucket(n, limit);
                    String at = c.getClass().getSimpleName() + " N=" + n + " bucket " + b;
                    for (long weight : new long[] {Gemv.STREAMED_MAX_WEIGHT_BYTES, Gemv.STREAMED_MAX_WEIGHT_BYTES + 1}) { // kept in L2, or not
                        assertEquals(Gemv.serves(n, weight), Gemv.serves(b, weight), at + ": gemv for a weight of " + weight + " bytes");
                    }
                    assertEquals(n <= CudaRunner.SPLIT_MAX_SEQS, b <= CudaRunner.SPLIT_MAX_SEQS, at + ": split-K attention");
                    assertEquals(MoeExperts.tensorCores(n, k, e), MoeExperts.tensorCores(b, k, e), at + ": tensor-core experts");
                }
            }
        }
        // the thresholds themselves: groups average more than one 8-slot pass
        assertFalse(MoeExperts.tensorCores(256, 8, 256));
        assertTrue(MoeExperts.tensorCores(257, 8, 256));
        assertFalse(MoeExperts.tensorCores(128, 6, 64)); // 8·64/6 = 85.3, rounded up to 128
        assertTrue(MoeExperts.tensorCores(129, 6, 64));
        assertTrue(MoeExperts.tensorCores(2, 8, 1));
        assertFalse(MoeExperts.tensorCores(1, 8, 1));
    }
    private static final int VOCAB = 1000;
    private static final int BLOCK = 16;
    private static final int MAX_BLOCKS = 5;

    @Test
    void bucketsArePowersOfTwoCappedAtTheLimit() {
        int[][] cases = {{1, 1}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {8, 8}, {9, 16}, {16, 16}, {17, 32}, {33, 64}, {65, 128}, {129, 256}, {256, 256}};
        for (int[] c : cases) {
            assertEquals(c[1], DecodeGraphs.bucket(c[0], DecodeGraphs.DEFAULT_LIMIT), "n = " + c[0]);
        }
        assertEquals(0, DecodeGraphs.bucket(257, DecodeGraphs.DEFAULT_LIMIT), "beyond the limit: eager");
        // a max-running of 48
        assertEquals(32, DecodeGraphs.bucket(17, 48));
        assertEquals(48, DecodeGraphs.bucket(33, 48));
        assertEquals(48, DecodeGraphs.bucket(48, 48));
        assertEquals(0, DecodeGraphs.bucket(49, 48));
        assertEquals(1, DecodeGraphs.bucket(1, 1));
        assertThrows(IllegalArgumentException.class, () -> DecodeGraphs.bucket(0, 8));
    }

    @Test
    void everyBucketUpToTheLimitIsListedOnce() {
        assertEquals(List.of(1), DecodeGraphs.buckets(1));
        assertEquals(List.of(1, 2, 4, 8, 16, 32, 48), DecodeGraphs.buckets(48));
        assertEquals(List.of(1, 2, 4, 8, 16, 32, 64), DecodeGraphs.buckets(64));
        assertEquals(List.of(1, 2, 3), DecodeGraphs.buckets(3));
        for (int limit = 1; limit <= 300; limit++) {
            List<Integer> buckets = DecodeGraphs.buckets(limit);
            for (int n = 1; n <= limit; n++) {
                assertTrue(buckets.contains(DecodeGraphs.bucket(n, limit)), "limit " + limit + ", n " + n);
            }
        }
    }

    @Test
    void buffersGrowRarelyAndNeverPastTheLimit() {
        assertEquals(16, DecodeGraphs.grow(1, 0, 256), "first use: at least MIN_CAPACITY");
        assertEquals(4, DecodeGraphs.grow(4, 0, 4), "never past the limit");
        assertEquals(64, DecodeGraphs.grow(64, 0, 256));
        assertEquals(16, DecodeGraphs.grow(8, 16, 256), "big enough already");
        assertEquals(32, DecodeGraphs.grow(32, 16, 256), "doubles");
        assertEquals(128, DecodeGraphs.grow(128, 16, 256), "at least the bucket");
        assertEquals(48, DecodeGraphs.grow(48, 32, 48));
    }

    private static Sampling sampling(SamplingParams p, int historyLength, int promptLength) {
        return new Sampling(Sampler.of(p), new int[historyLength], historyLength, promptLength, 0);
    }

    private static StepEntry decode(long id, int token, int position, int[] table, Sampling s) {
        return new StepEntry(id, new int[] {token}, position, table, s);
    }

    private static List<StepEntry> decodeBatch() {
        SamplingParams random = new SamplingParams(0.7, 40, 0.9, 0.05, 1, 0, 0, 0x1234_5678_9ABCL);
        List<StepEntry> batch = new ArrayList<>();
        batch.add(decode(7, 11, 20, new int[] {4, 2}, sampling(SamplingParams.greedy(), 21, 15)));
        batch.add(decode(8, 12, 3, new int[] {9}, sampling(random, 4, 2)));
        batch.add(decode(9, 13, 40, new int[] {1, 0, 3}, null)); // a one-token prefill chunk is decode-shaped too
        return batch;
    }

    @Test
    void paddingAppendsInertRowsAndKeepsTheStepsOwn() {
        StepInputs in = StepInputs.of(decodeBatch(), VOCAB, BLOCK, MAX_BLOCKS);
        StepInputs p = StepInputs.padded(in, 8);
        assertEquals(8, p.tokens());
        assertEquals(8, p.seqs());
        assertEquals(8, p.rows());
        assertArrayEquals(new int[] {11, 12, 13, 0, 0, 0, 0, 0}, p.ids());
        assertArrayEquals(new int[] {20, 3, 40, 0, 0, 0, 0, 0}, p.positions());
        // slot = table[p / B]·B + p % B; padding: -1, no K/V write
        assertArrayEquals(new int[] {2 * 16 + 4, 9 * 16 + 3, 3 * 16 + 8, -1, -1, -1, -1, -1}, p.slots());
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7}, p.rowSeq());
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7}, p.lastRows(), "every row is its sequence's last");
        assertArrayEquals(new int[] {21, 4, 41, 0, 0, 0, 0, 0}, p.contextLens(), "padding attends to nothing");
        assertEquals(8 * MAX_BLOCKS, p.blockTables().length);
        assertArrayEquals(in.blockTables(), Arrays.copyOf(p.blockTables(), 3 * MAX_BLOCKS));
        for (int i = 3 * MAX_BLOCKS; i < p.blockTables().length; i++) {
            assertEquals(0, p.blockTables()[i]);
        }
        assertArrayEquals(new float[] {0f, 0.7f, 0f, 0, 0, 0, 0, 0}, p.temperature(), "padding samples greedily");
        assertArrayEquals(new int[] {0, 40, 0, 0, 0, 0, 0, 0}, p.topK());
        assertArrayEquals(new float[] {1f, 0.9f, 1f, 1, 1, 1, 1, 1}, p.topP());
        assertArrayEquals(new float[] {0f, 0.05f, 0f, 0, 0, 0, 0, 0}, p.minP());
        assertArrayEquals(new long[] {0, 0x1234_5678_9ABCL, 0, 0, 0, 0, 0, 0}, p.seeds());
        assertArrayEquals(new long[] {6, 2, 0, 0, 0, 0, 0, 0}, p.steps());
        assertArrayEquals(new boolean[8], p.onHost());
        assertSame(in, StepInputs.padded(in, 3), "already the bucket's size");
    }

    @Test
    void onlyDecodeStepsArePadded() {
        StepInputs in = StepInputs.of(decodeBatch(), VOCAB, BLOCK, MAX_BLOCKS);
        assertThrows(IllegalArgumentException.class, () -> StepInputs.padded(in, 2));
        List<StepEntry> mixed = new ArrayList<>(decodeBatch());
        mixed.add(new StepEntry(10, new int[] {1, 2, 3}, 0, new int[] {5}, null));
        StepInputs prefill = StepInputs.of(mixed, VOCAB, BLOCK, MAX_BLOCKS);
        assertThrows(IllegalArgumentException.class, () -> StepInputs.padded(prefill, 8));
    }

    @Test
    void layoutRegionsAreAlignedInOrderAndDisjoint() {
        for (int[] dims : new int[][] {{1, 1, 1, 1}, {3, 3, 3, 5}, {37, 4, 4, 32}, {8, 8, 8, 2048}, {5, 1, 5, 7}}) {
            InputLayout l = new InputLayout(dims[0], dims[1], dims[2], dims[3]);
            int t = l.tokens();
            int n = l.seqs();
            int r = l.rows();
            int[][] regions = { // offset, words
                    {l.seeds(), 2 * r}, {l.steps(), 2 * r}, {l.temperature(), r}, {l.topK(), r}, {l.topP(), r}, {l.minP(), r}, {l.lastRows(), r},
                    {l.ids(), t}, {l.positions(), t}, {l.slots(), t}, {l.rowSeq(), t}, {l.contextLens(), n}, {l.blockTables(), n * l.maxBlocks()}};
            int end = 0;
            for (int[] region : regions) {
                assertEquals(0, region[0] % 4, "16-byte aligned: " + l);
                assertTrue(region[0] >= end, "disjoint and in order: " + l);
                end = region[0] + region[1];
            }
            assertTrue(l.words() >= end, "words cover every region: " + l);
            assertEquals(0, l.words() % 4);
        }
        // monotonic: a smaller step fits the buffers of a bigger one
        assertTrue(new InputLayout(3, 2, 2, 32).words() <= new InputLayout(4, 4, 4, 32).words());
        assertThrows(IllegalArgumentException.class, () -> new InputLayout(0, 1, 1, 1));
    }

    @Test
    void packingPutsEveryValueInItsRegion() {
        StepInputs p = StepInputs.padded(StepInputs.of(decodeBatch(), VOCAB, BLOCK, MAX_BLOCKS), 4);
        InputLayout l = p.layout(MAX_BLOCKS);
        int[] w = p.pack(l);
        assertEquals(l.words(), w.length);
        for (int i = 0; i < 4; i++) {
            assertEquals(p.ids()[i], w[l.ids() + i]);
            assertEquals(p.positions()[i], w[l.positions() + i]);
            assertEquals(p.slots()[i], w[l.slots() + i]);
            assertEquals(p.rowSeq()[i], w[l.rowSeq() + i]);
            assertEquals(p.lastRows()[i], w[l.lastRows() + i]);
            assertEquals(p.contextLens()[i], w[l.contextLens() + i]);
            assertEquals(p.topK()[i], w[l.topK() + i]);
            assertEquals(p.temperature()[i], Float.intBitsToFloat(w[l.temperature() + i]));
            assertEquals(p.topP()[i], Float.intBitsToFloat(w[l.topP() + i]));
            assertEquals(p.minP()[i], Float.intBitsToFloat(w[l.minP() + i]));
            // uint64 as little-endian word pairs
            assertEquals(p.seeds()[i], (w[l.seeds() + 2 * i] & 0xFFFF_FFFFL) | ((long) w[l.seeds() + 2 * i + 1] << 32));
            assertEquals(p.steps()[i], (w[l.steps() + 2 * i] & 0xFFFF_FFFFL) | ((long) w[l.steps() + 2 * i + 1] << 32));
        }
        assertArrayEquals(p.blockTables(), Arrays.copyOfRange(w, l.blockTables(), l.blockTables() + 4 * MAX_BLOCKS));
        assertThrows(IllegalArgumentException.class, () -> p.pack(new InputLayout(8, 8, 8, MAX_BLOCKS)), "a layout of another size");
    }

    @Test
    void everyRowGivesOneOutputRowPerToken() {
        StepInputs in = StepInputs.of(List.of(new StepEntry(1, new int[] {5, 6, 7, 8}, 0, new int[] {3}, null)), VOCAB, BLOCK, MAX_BLOCKS);
        StepInputs all = in.everyRow();
        assertEquals(4, all.tokens());
        assertEquals(1, all.seqs());
        assertEquals(4, all.rows());
        assertArrayEquals(new int[] {0, 1, 2, 3}, all.lastRows());
        int[] w = all.pack(all.layout(MAX_BLOCKS));
        InputLayout l = all.layout(MAX_BLOCKS);
        assertEquals(3, w[l.lastRows() + 3]);
        assertEquals(4, w[l.contextLens()]);
        assertFalse(all.onHost()[0]);
    }
}
